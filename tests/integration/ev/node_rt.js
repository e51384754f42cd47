// node_rt.js: plain-HTTP Node.js clients for test_runtimes.sh, run under the shim (which adds TLS).
//   node node_rt.js fetch BASE N CONC   fetch() (undici) of BASE/fI.bin, I = 0..N-1, CONC at a time
//   node node_rt.js http  BASE N CONC   http.get with a keep-alive Agent (maxSockets CONC), same files
// Prints "file I n=BYTES sha=HEX" per file, then "ok=K failed=F most_in_flight=M seconds=S".
// Exits 0 only if every request answered 200 with a body; the test compares the SHA-256s. Bounded: 60 s.
'use strict';
const http = require('http');
const crypto = require('crypto');

const [mode, base, nArg, concArg] = process.argv.slice(2);
const n = parseInt(nArg, 10);
const conc = parseInt(concArg, 10);
const die = (m) => {
	console.error('node_rt: ' + m);
	process.exit(1);
};
setTimeout(() => die('timed out after 60 s'), 60000).unref();
if (!['fetch', 'http'].includes(mode) || !(n > 0) || !(conc > 0)) die('usage: node_rt.js fetch|http BASE N CONC');

const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
let inFlight = 0;
let most = 0;

function viaHttp(url) {
	return new Promise((resolve, reject) => {
		http.get(url, { agent }, (res) => {
			const chunks = [];
			res.on('data', (d) => chunks.push(d));
			res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
			res.on('error', reject);
		}).on('error', reject);
	});
}

async function viaFetch(url) {
	const res = await fetch(url);
	return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function one(i, results) {
	inFlight++;
	most = Math.max(most, inFlight);
	try {
		const r = await (mode === 'fetch' ? viaFetch : viaHttp)(`${base}/f${i}.bin`);
		results[i] = r.status === 200 ? r.body : new Error('HTTP status ' + r.status);
	} catch (e) {
		results[i] = e;
	} finally {
		inFlight--;
	}
}

(async () => {
	const t0 = Date.now();
	const results = new Array(n);
	let next = 0;
	const worker = async () => {
		while (next < n) await one(next++, results);
	};
	await Promise.all(Array.from({ length: conc }, worker));
	let ok = 0;
	results.forEach((r, i) => {
		if (r instanceof Error) {
			console.log(`file ${i} error ${r.code || ''} ${r.message} ${r.cause ? r.cause.code + ' ' + r.cause.message : ''}`);
			return;
		}
		ok++;
		console.log(`file ${i} n=${r.length} sha=${crypto.createHash('sha256').update(r).digest('hex')}`);
	});
	console.log(`ok=${ok} failed=${n - ok} most_in_flight=${most} seconds=${((Date.now() - t0) / 1000).toFixed(2)}`);
	agent.destroy();
	process.exit(ok === n ? 0 : 1);
})();
