/**
 * The admin macaroon, as Aperture makes it (`admin/auth.go`): a 32-byte random root key in
 * `admin.rootkey` next to the macaroon file, and a V2 macaroon with identifier `admin`, location
 * `aperture` and no caveats, written to `admin.macaroonpath` (default `<basedir>/admin.macaroon`).
 * Both files are 0600 in a 0700 directory, made on first start and reused after.
 *
 * A request proves itself with the macaroon in hex, in `Grpc-Metadata-Macaroon` (Aperture's REST
 * header) or `Authorization: Macaroon <hex>`. It is accepted when its signature chain checks out
 * under the root key (compared in constant time by `Macaroon.verifySignature`) and it carries the
 * `admin` identifier and no caveat: a caveat this code does not know could only be meant to narrow,
 * so a narrowed macaroon is refused rather than granted everything.
 *
 * @example
 * const credentials = AdminCredentials.ensure('/home/me/.l402/admin.macaroon');
 * credentials.check(request.headers); // throws AdminError(L402_ADMIN_UNAUTHENTICATED) when wrong
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { dirname, join } from 'node:path';
import { Macaroon } from 'l402';
import { AdminError } from './errors.js';

const ROOT_KEY_BYTES = 32;
const IDENTIFIER = 'admin';
const LOCATION = 'aperture';
/** A hex macaroon longer than this is refused before decoding (the real one is about 100 bytes). */
const MAX_HEX = 8_192;

/** The admin credentials in force: where the macaroon is, and the check for a request. */
export interface Credentials {
  /** The macaroon file (0600). */
  readonly macaroonPath: string;
  /** The macaroon in hex, as clients send it. */
  readonly macaroonHex: string;
  /** Throws `AdminError` (`L402_ADMIN_UNAUTHENTICATED`) unless the headers carry the admin macaroon. */
  check(headers: IncomingHttpHeaders): void;
}

/** Writes `bytes` to `path` atomically with mode 0600. */
function writePrivate(path: string, bytes: Uint8Array): void {
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

function readIfThere(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The admin credentials at `macaroonPath`: made on first use (root key, then macaroon), read after.
 * A macaroon file that no longer matches the root key is rewritten from it.
 *
 * @example
 * const { macaroonHex } = ensure(config.admin.macaroonpath);
 */
export function ensure(macaroonPath: string): Credentials {
  const dir = dirname(macaroonPath);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const rootKeyPath = join(dir, 'admin.rootkey');
  let rootKey = readIfThere(rootKeyPath);
  if (rootKey === undefined || rootKey.length !== ROOT_KEY_BYTES) {
    rootKey = randomBytes(ROOT_KEY_BYTES);
    writePrivate(rootKeyPath, rootKey);
  }
  const key = new Uint8Array(rootKey);
  let macaroon: Macaroon.Macaroon | undefined;
  const existing = readIfThere(macaroonPath);
  if (existing !== undefined) {
    try {
      const decoded = Macaroon.decode(new Uint8Array(existing));
      if (valid(decoded, key)) macaroon = decoded;
    } catch {
      // Unreadable: made again below.
    }
  }
  if (macaroon === undefined) {
    macaroon = Macaroon.create({ rootKey: key, identifier: IDENTIFIER, location: LOCATION });
    writePrivate(macaroonPath, Macaroon.encode(macaroon));
  }
  const macaroonHex = Macaroon.toHex(macaroon);
  return {
    macaroonPath,
    macaroonHex,
    check(headers) {
      const presented = presentedHex(headers);
      if (presented === undefined)
        throw unauthenticated('missing admin macaroon (header Grpc-Metadata-Macaroon)');
      let candidate: Macaroon.Macaroon;
      try {
        candidate = Macaroon.fromHex(presented);
      } catch {
        throw unauthenticated('invalid admin macaroon encoding');
      }
      if (!valid(candidate, key)) throw unauthenticated('admin macaroon verification failed');
    },
  };
}

function valid(macaroon: Macaroon.Macaroon, rootKey: Uint8Array): boolean {
  const signed = Macaroon.verifySignature(macaroon, rootKey);
  return (
    signed && macaroon.caveats.length === 0 && new TextDecoder().decode(macaroon.identifier) === IDENTIFIER
  );
}

function unauthenticated(message: string): AdminError {
  return new AdminError('L402_ADMIN_UNAUTHENTICATED', message);
}

/** The hex macaroon a request presents, if any; over-long values count as absent-and-wrong. */
function presentedHex(headers: IncomingHttpHeaders): string | undefined {
  const grpc = headers['grpc-metadata-macaroon'];
  let value = Array.isArray(grpc) ? grpc[0] : grpc;
  if (value === undefined) {
    const authorization = headers.authorization;
    const m = typeof authorization === 'string' ? /^Macaroon\s+(\S+)$/i.exec(authorization) : null;
    value = m?.[1];
  }
  if (value === undefined || value === '') return undefined;
  if (value.length > MAX_HEX) throw unauthenticated('admin macaroon too long');
  return value.trim();
}
