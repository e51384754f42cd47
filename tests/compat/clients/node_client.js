// Plain (non-TLS) Node.js clients for the compatibility suite; run under the shim, which adds TLS.
//   node node_client.js net HOST PORT NBYTES   net.connect: NBYTES bytes to an echo server, end(),
//                                              read everything back, compare
//   node node_client.js http URL               http.get; prints the body's length and sha256
// Prints one line "OK ..." and exits 0; exits 1 with a message otherwise.
'use strict';
const net = require('net');
const http = require('http');
const crypto = require('crypto');

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const die = (m) => { console.error('node_client: ' + m); process.exit(1); };
setTimeout(() => die('timed out after 30 s'), 30000).unref();

function detBytes(n) {
	const parts = [];
	let len = 0;
	for (let i = 0; len < n; i++) {
		const d = crypto.createHash('sha256').update('tlsshim-' + i).digest();
		parts.push(d);
		len += d.length;
	}
	return Buffer.concat(parts).subarray(0, n);
}

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'net') {
	const data = detBytes(parseInt(c, 10));
	const chunks = [];
	const s = net.connect({ host: a, port: parseInt(b, 10) }, () => s.end(data));
	s.on('data', (d) => chunks.push(d));
	s.on('error', (e) => die('net: ' + e.code + ' ' + e.message));
	s.on('close', () => {
		const got = Buffer.concat(chunks);
		if (!got.equals(data)) die(`echo mismatch: sent ${data.length} bytes, got ${got.length}`);
		console.log(`OK net ${got.length} ${sha(got)}`);
	});
} else if (mode === 'http') {
	http.get(a, (res) => {
		const chunks = [];
		res.on('data', (d) => chunks.push(d));
		res.on('end', () => {
			if (res.statusCode !== 200) die('HTTP status ' + res.statusCode);
			const got = Buffer.concat(chunks);
			console.log(`OK http ${got.length} ${sha(got)}`);
		});
	}).on('error', (e) => die('http: ' + e.code + ' ' + e.message));
} else {
	die('usage: node_client.js net HOST PORT NBYTES | http URL');
}
