/** The emulator's TLS identity: self-signed for localhost, kept in dataDir so clients trust it across restarts. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import selfsigned from 'selfsigned';

export interface TlsIdentity {
  certPem: string;
  keyPem: string;
}

function generate(): TlsIdentity {
  // node-forge's pure-JS RSA keygen takes seconds; node:crypto is near-instant, forge only signs.
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const opts = {
    days: 825,
    algorithm: 'sha256',
    keyPair: { privateKey, publicKey },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  };
  const res = selfsigned.generate([{ name: 'commonName', value: 'localhost' }], opts as selfsigned.SelfsignedOptions);
  return { certPem: res.cert, keyPem: res.private };
}

export function loadOrCreateIdentity(dataDir?: string): TlsIdentity {
  if (!dataDir) return generate();
  const certFile = path.join(dataDir, 'cert.pem');
  const keyFile = path.join(dataDir, 'key.pem');
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    const id = { certPem: fs.readFileSync(certFile, 'utf8'), keyPem: fs.readFileSync(keyFile, 'utf8') };
    // An expired certificate would make every client fail with an opaque TLS error; replace it instead.
    if (new crypto.X509Certificate(id.certPem).validTo && Date.parse(new crypto.X509Certificate(id.certPem).validTo) > Date.now() + 86_400_000) return id;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const id = generate();
  fs.writeFileSync(keyFile, id.keyPem, { mode: 0o600 });
  fs.writeFileSync(certFile, id.certPem);
  return id;
}
