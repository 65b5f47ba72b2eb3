/**
 * The files the gateway keeps its own secrets in: the master key of `secrets.mode: derived` (every
 * root key is HMAC(master key, token id), so nothing per token needs storing) and the serving TLS
 * certificate that is made when none is configured, as Aperture makes `tls.cert`/`tls.key`.
 *
 * Both are created with mode 0600 in a 0700 directory, written whole and linked into place: two
 * gateways starting together on one basedir never write two different master keys, and whatever
 * reads a file reads a whole one.
 *
 * @example
 * const masterKey = masterKeyAt('/home/me/.l402/master.key'); // 32 random bytes the first time
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { Tls } from '@l402/devnet';
import { StartError } from '../Errors.js';

const MASTER_KEY_BYTES = 32;

const reason = (error: unknown) => (error as NodeJS.ErrnoException).code ?? String(error);

/**
 * Creates `path` holding `bytes` (0600, fsynced), or returns false when it already exists. The bytes
 * go to a private temporary file first and are linked into place, so the file never exists half written.
 */
function createExclusive(path: string, bytes: Uint8Array | string): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * The master key in `path`, made of 32 random bytes when the file does not exist yet. A file shorter
 * than 32 bytes is refused rather than stretched.
 *
 * @example
 * const keys = { mode: 'derived', masterKey: masterKeyAt(config.secrets.masterkeypath) } as const;
 */
export function masterKeyAt(path: string): Uint8Array {
  try {
    createExclusive(path, randomBytes(MASTER_KEY_BYTES));
    const key = new Uint8Array(readFileSync(path));
    if (key.length < MASTER_KEY_BYTES) {
      throw new StartError(
        'L402_GATEWAY_SECRETS',
        `the master key in ${path} is ${key.length} bytes; it must be at least ${MASTER_KEY_BYTES} (remove the file to make a new one, which invalidates every token minted with the old one)`,
      );
    }
    return key;
  } catch (error) {
    if (error instanceof StartError) throw error;
    throw new StartError(
      'L402_GATEWAY_SECRETS',
      `cannot read or create the master key ${path} (${reason(error)})`,
      {
        cause: error,
      },
    );
  }
}

/** A PEM certificate and its private key, as the TLS listener takes them. */
export interface ServingCertificate {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * The certificate and key at the configured paths.
 *
 * @example
 * const { cert, key } = certificateAt(config.tlscertpath, config.tlskeypath);
 */
export function certificateAt(certPath: string, keyPath: string): ServingCertificate {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new StartError('L402_GATEWAY_TLS', `cannot read the TLS ${what} ${path} (${reason(error)})`, {
        cause: error,
      });
    }
  };
  return { cert: read(certPath, 'certificate'), key: read(keyPath, 'key') };
}

/**
 * The self-signed pair at `certPath`/`keyPath`, made for `hosts` when absent or expired (ECDSA P-256,
 * LND's shape). A client trusts it by pinning the certificate file.
 *
 * @example
 * const { cert, key } = selfSignedAt(join(basedir, 'tls.cert'), join(basedir, 'tls.key'), ['localhost', '127.0.0.1']);
 */
export function selfSignedAt(
  certPath: string,
  keyPath: string,
  hosts: readonly string[],
  now: () => number = Date.now,
): ServingCertificate {
  try {
    const current = readIfValid(certPath, keyPath, now());
    if (current !== undefined) return current;
    const made = Tls.selfSigned({ hosts, now });
    // The key first: a reader that finds the new certificate finds its key.
    rmSync(certPath, { force: true });
    rmSync(keyPath, { force: true });
    createExclusive(keyPath, made.keyPem);
    createExclusive(certPath, made.certPem);
    return { cert: Buffer.from(made.certPem), key: Buffer.from(made.keyPem) };
  } catch (error) {
    if (error instanceof StartError) throw error;
    throw new StartError(
      'L402_GATEWAY_TLS',
      `cannot make the self-signed TLS certificate ${certPath} (${reason(error)})`,
      { cause: error },
    );
  }
}

function readIfValid(certPath: string, keyPath: string, now: number): ServingCertificate | undefined {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certPath);
    key = readFileSync(keyPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  // A pair that no longer parses, or has expired, is remade, as Aperture renews its own.
  try {
    if (Date.parse(new X509Certificate(cert).validTo) > now) return { cert, key };
  } catch {
    return undefined;
  }
  return undefined;
}
