import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestkitError } from './errors.ts';

const run = promisify(execFile);

/**
 * Certificates for a TLS server and its clients, as PEM text and as files. The server
 * certificate is valid for `localhost` and `127.0.0.1`, for both server and client
 * authentication, so the same pair serves as a client certificate.
 */
export interface TlsMaterial {
  /** PEM of the certificate authority that signed `cert`. */
  readonly ca: string;
  /** PEM certificate (server and client). */
  readonly cert: string;
  /** PEM private key of `cert`. */
  readonly key: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

let shared: Promise<TlsMaterial> | undefined;

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 30_000 });
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new TestkitError(
      'ERR_TESTKIT_TLS',
      missing
        ? 'TLS servers need the openssl command to generate certificates; install it (Debian: apt-get install openssl)'
        : `openssl ${args[0]} failed while generating test certificates`,
      { cause: err },
    );
  }
}

async function generate(): Promise<TlsMaterial> {
  // Files live as long as the process; they hold no secret worth protecting beyond the test run.
  const dir = mkdtempSync(join(tmpdir(), 'redis-events-tls-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const days = '7';
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    [
      'req',
      '-x509',
      ...curve,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      days,
      '-subj',
      '/O=redis-events testkit/CN=testkit CA',
    ],
    dir,
  );
  await openssl(
    [
      'req',
      '-new',
      ...curve,
      '-keyout',
      'redis.key',
      '-out',
      'redis.csr',
      '-subj',
      '/O=redis-events testkit/CN=localhost',
    ],
    dir,
  );
  writeFileSync(
    join(dir, 'ext.cnf'),
    [
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      'basicConstraints=CA:FALSE',
      '',
    ].join('\n'),
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'redis.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      days,
      '-sha256',
      '-extfile',
      'ext.cnf',
      '-out',
      'redis.crt',
    ],
    dir,
  );
  const caFile = join(dir, 'ca.crt');
  const certFile = join(dir, 'redis.crt');
  const keyFile = join(dir, 'redis.key');
  return {
    ca: readFileSync(caFile, 'utf8'),
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
    caFile,
    certFile,
    keyFile,
  };
}

/**
 * Certificates for TLS tests, generated with `openssl` on first use and shared by every TLS
 * server of this process.
 *
 * @example
 * ```ts
 * const tls = await testCertificates();
 * const client = new Redis({ port, tls: { ca: tls.ca, cert: tls.cert, key: tls.key } });
 * ```
 * @throws {TestkitError} `ERR_TESTKIT_TLS` when openssl is missing or fails.
 */
export function testCertificates(): Promise<TlsMaterial> {
  shared ??= generate().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}
