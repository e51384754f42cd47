// Plain (non-TLS) JVM client for the compatibility suite; run under the shim, which adds TLS.
// JDK 11+ single-file launch:  java Client.java HOST PORT NBYTES
// A java.net.Socket sends NBYTES deterministic bytes to an echo server, shuts down its output, reads
// everything back and compares. Prints "OK java NBYTES SHA256" and exits 0; exits 1 otherwise.
// (The JVM uses AF_INET6 sockets: an IPv4 destination is connected as ::ffff:a.b.c.d.)
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.security.MessageDigest;
import java.util.Arrays;

public class Client {
	static byte[] detBytes(int n) throws Exception {
		ByteArrayOutputStream out = new ByteArrayOutputStream();
		for (int i = 0; out.size() < n; i++) {
			out.write(MessageDigest.getInstance("SHA-256").digest(("tlsshim-" + i).getBytes("US-ASCII")));
		}
		return Arrays.copyOf(out.toByteArray(), n);
	}

	static String hex(byte[] b) {
		StringBuilder s = new StringBuilder();
		for (byte x : b) s.append(String.format("%02x", x));
		return s.toString();
	}

	public static void main(String[] args) throws Exception {
		byte[] data = detBytes(Integer.parseInt(args[2]));
		try (Socket s = new Socket()) {
			s.connect(new InetSocketAddress(args[0], Integer.parseInt(args[1])), 15000);
			s.setSoTimeout(30000);
			System.err.println("java: connected " + s.getLocalAddress() + " -> " + s.getInetAddress());
			OutputStream os = s.getOutputStream();
			InputStream is = s.getInputStream();
			ByteArrayOutputStream got = new ByteArrayOutputStream();
			Thread reader = new Thread(() -> {
				byte[] buf = new byte[65536];
				try {
					int r;
					while ((r = is.read(buf)) > 0) got.write(buf, 0, r);
				} catch (Exception e) {
					System.err.println("java: read failed: " + e);
				}
			});
			reader.start();
			os.write(data);
			os.flush();
			s.shutdownOutput();
			reader.join(30000);
			byte[] g = got.toByteArray();
			if (!Arrays.equals(g, data)) {
				System.err.println("java: echo mismatch: sent " + data.length + " bytes, got " + g.length);
				System.exit(1);
			}
			System.out.println("OK java " + g.length + " " + hex(MessageDigest.getInstance("SHA-256").digest(g)));
		}
	}
}
