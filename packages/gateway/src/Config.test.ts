import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import * as Config from './Config.js';
import { ConfigError } from './Errors.js';

const SAMPLE = fileURLToPath(new URL('./fixtures/aperture-sample-conf.yaml', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** The smallest config that loads: a backend. */
const BASE = 'authenticator:\n  backend: devnet\n';

function failure(text: string, options: Config.Options = {}): ConfigError {
  try {
    Config.parse(text, 'aperture.yaml', { env: {}, ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.name).toBe('ConfigError');
    expect(e.code).toBe('L402_CONFIG_INVALID');
    expect(e.message).not.toContain('\n');
    return e;
  }
  throw new Error('expected a ConfigError');
}

function names(warnings: readonly string[]): string[] {
  return warnings.map((w) => /config key (\S+)/.exec(w)?.[1] ?? w);
}

describe('the Aperture sample config', () => {
  const { config, warnings } = Config.load(SAMPLE, { env: {} });

  test('loads, reporting every key it ignores by name, in file order', () => {
    expect(names(warnings)).toEqual([
      'staticroot',
      'configfile',
      'invoicebatchsize',
      'profile',
      'wspinginterval',
      'wspongwait',
      'authenticator.lndhost',
      'authenticator.passphrase',
      'authenticator.mailboxaddress',
      'etcd',
      'services[2].dynamicprice.enbled',
      'tor',
      'hashmail',
      'logging',
    ]);
    expect(warnings).toContain(
      `${SAMPLE}:347: config key hashmail is not supported by l402 and is ignored (no Lightning Node Connect mailbox relay)`,
    );
    expect(warnings).toContain(
      `${SAMPLE}:323: config key services[2].dynamicprice.enbled is unknown and ignored (did you mean enabled?)`,
    );
    expect(warnings.find((w) => w.includes('authenticator.lndhost'))).toMatch(
      /:85: .*port 10009, LND's gRPC port/,
    );
  });

  test('top-level keys', () => {
    expect(config.listenaddr).toEqual({ host: 'localhost', port: 8081 });
    expect(config.debuglevel).toBe('debug');
    expect(config.basedir).toBe('/path/to/.aperture');
    expect(config.servername).toBe('aperture.example.com');
    expect(config.insecure).toBe(false);
    expect(config.tlscertpath).toBe('/path/to/.aperture/tls.cert');
    expect(config.tlskeypath).toBe('/path/to/.aperture/tls.key');
    expect(config.tlsselfsigned).toBe(true);
    expect([config.idletimeout, config.readtimeout, config.writetimeout]).toEqual([120_000, 15_000, 30_000]);
    expect(config.blocklist).toEqual(['1.1.1.1', '1.0.0.1']);
    expect(config.prometheus).toEqual({ enabled: true, listenaddr: { host: 'localhost', port: 9000 } });
    expect(config.admin.enabled).toBe(false);
  });

  test('database keys', () => {
    expect(config.dbbackend).toBe('sqlite');
    expect(config.sqlite).toEqual({ dbfile: '/path/to/.aperture/aperture.db', skipmigrations: false });
    expect(config.postgres).toEqual({
      host: 'localhost',
      port: 5432,
      user: 'user',
      password: 'password',
      dbname: 'aperture',
      maxconnections: 25,
      requiressl: true, // the sample's `requireSSL`
      skipmigrations: false,
    });
  });

  test('authenticator keys', () => {
    expect(config.authenticator).toEqual({
      disable: false,
      network: 'simnet',
      wallet: {
        backend: 'lnd',
        url: 'https://localhost:10009',
        tlspath: '/path/to/lnd/tls.cert',
        macaroonpath: '/path/to/lnd/data/chain/bitcoin/simnet/invoice.macaroon',
      },
      enablempp: false,
      mpprealm: 'localhost:8081',
      enablesessions: false,
      sessiondepositmultiplier: 20,
      sessionidletimeout: 300,
    });
  });

  test('the first service', () => {
    const s = config.services[0]!;
    expect(s.name).toBe('service1');
    expect(s.hostregexp.source).toBe('^service1.com$');
    expect(s.hostregexp.test('service1.com')).toBe(true);
    expect(s.pathregexp?.source).toBe('^\\/.*$');
    expect(s.address).toEqual({ host: '127.0.0.1', port: 10009 });
    expect(s.protocol).toBe('https');
    expect(s.tlscertpath).toBe(join(FIXTURES, 'path-to-optional-tls-cert/tls.cert'));
    expect(s.price).toBe(1); // `price: 0` is 1 sat, as Aperture
    expect(s.capabilities).toEqual(['add', 'subtract']);
    expect(s.constraints).toEqual({ valid_until: '1682483169' });
    expect(s.timeout).toBe(31_557_600);
    expect(s.auth).toEqual({ kind: 'on' });
    expect(s.authscheme).toBe('l402');
    expect(s.headers).toEqual({});
    expect(s.authwhitelistpaths.map((r) => r.source)).toEqual(['^\\/freebieservice.*$']);
    expect(s.authskipinvoicecreationpaths.map((r) => r.source)).toEqual(['^\\/streamingservice.*$']);
    expect(s.ratelimits.map((r) => [r.pathregexp?.source, r.requests, r.per, r.burst])).toEqual([
      ['^\\/looprpc.SwapServer\\/LoopOutTerms.*$', 5, 1_000, 100],
      ['^\\/looprpc.SwapServer\\/LoopOutQuote.*$', 2, 1_000, 2],
    ]);
    expect(s.dynamicprice).toEqual({
      enabled: true,
      grpcaddress: { host: '127.0.0.1', port: 10010 },
      insecure: false,
      tlscertpath: join(FIXTURES, 'path-to-pricer-server-tls-cert/tls.cert'),
      httpurl: undefined,
      metered: false,
      usagetailbytes: 16_384,
      timeout: 3_000,
    });
  });

  test('the other services', () => {
    const [, two, three] = config.services;
    expect(two).toMatchObject({ name: 'service2', price: 1, constraints: { valid_until: '2020-01-01' } });
    expect(two!.address).toEqual({ host: '123.456.789', port: 8082 });
    // `enbled` is a typo Aperture ignores too: the pricer is off.
    expect(three!.dynamicprice).toEqual({ enabled: false });
  });
});

describe('errors name the file, the line and the key', () => {
  const service = (extra: string) =>
    `${BASE}services:\n  - name: a\n    address: "127.0.0.1:9000"\n  - name: b\n    address: "127.0.0.1:9001"\n${extra}`;

  test('a price that is not a number', () => {
    const e = failure(service('    price: cheap\n'));
    expect(e.message).toBe(
      'aperture.yaml:8: services[1].price: expected a non-negative integer, got "cheap"',
    );
    expect([e.file, e.line, e.key]).toEqual(['aperture.yaml', 8, 'services[1].price']);
  });

  test.each([
    ['-5', 'expected a non-negative integer, got -5'],
    ['1.5', 'expected a non-negative integer, got 1.5'],
    ['10000000000001', 'expected at most 10000000000000 sat (100 000 BTC), got 10000000000001'],
  ])('price %s', (value, message) => {
    expect(failure(service(`    price: ${value}\n`)).message).toBe(
      `aperture.yaml:8: services[1].price: ${message}`,
    );
  });

  test('a bad regular expression', () => {
    expect(failure(service("    pathregexp: '^/(api'\n")).message).toBe(
      'aperture.yaml:8: services[1].pathregexp: invalid regular expression "^/(api": Unterminated group',
    );
    expect(failure(service("    authwhitelistpaths:\n      - '^/ok$'\n      - '(?=x)'\n")).message).toBe(
      'aperture.yaml:10: services[1].authwhitelistpaths[1]: invalid regular expression "(?=x)": lookaround (?=, (?!, (?<=, (?<! is not RE2 syntax',
    );
  });

  test('a bad auth value', () => {
    expect(failure(service('    auth: freebie x\n')).message).toBe(
      'aperture.yaml:8: services[1].auth: expected on, off or "freebie N", got "freebie x"',
    );
  });

  test('auth values', () => {
    const auths = ['on', 'off', 'true', 'false', '"freebie 5"', 'FREEBIE  3', '""'].map(
      (value, i) => `  - name: s${i}\n    address: "h:1"\n    auth: ${value}\n`,
    );
    const { config } = Config.parse(`${BASE}services:\n${auths.join('')}`, 'a.yaml', { env: {} });
    expect(config.services.map((s) => s.auth)).toEqual([
      { kind: 'on' },
      { kind: 'off' },
      { kind: 'on' },
      { kind: 'off' },
      { kind: 'freebie', count: 5 },
      { kind: 'freebie', count: 3 },
      { kind: 'on' },
    ]);
  });

  test('an unknown dbbackend, and etcd', () => {
    expect(failure(`${BASE}dbbackend: mysql\n`).message).toBe(
      'aperture.yaml:3: dbbackend: expected sqlite or postgres, got "mysql"',
    );
    expect(failure(`${BASE}\ndbbackend: etcd\n`).message).toBe(
      'aperture.yaml:4: dbbackend: etcd is not supported by l402: use sqlite (one instance) or postgres (several)',
    );
  });

  test('postgres needs a dbname', () => {
    expect(failure(`${BASE}dbbackend: postgres\npostgres:\n  host: db\n`).message).toBe(
      'aperture.yaml:4: postgres.dbname: missing: required when dbbackend is postgres',
    );
  });

  test('a service without a name', () => {
    expect(failure(`${BASE}services:\n  - address: "127.0.0.1:9000"\n    price: 5\n`).message).toBe(
      'aperture.yaml:4: services[0].name: missing: expected a service name',
    );
  });

  test('duplicate service names', () => {
    expect(failure(service('  - name: a\n    address: "127.0.0.1:9002"\n')).message).toBe(
      'aperture.yaml:8: services[2].name: duplicate service name "a" (also services[0])',
    );
  });

  test('a service name that would break the services caveat', () => {
    expect(failure(`${BASE}services:\n  - name: "a,b"\n    address: "h:1"\n`).message).toMatch(
      /^aperture\.yaml:4: services\[0\]\.name: expected a service name without spaces/,
    );
  });

  test('the wrong type at nested keys', () => {
    expect(failure(service('    dynamicprice:\n      enabled: "yes"\n')).message).toBe(
      'aperture.yaml:9: services[1].dynamicprice.enabled: expected true or false, got "yes"',
    );
    expect(failure(service('    ratelimits:\n      - requests: 5\n        per: 5\n')).message).toBe(
      'aperture.yaml:10: services[1].ratelimits[0].per: expected a duration with a unit such as "5s", got 5 (Go would read a bare number as nanoseconds)',
    );
    expect(failure(service('    ratelimits:\n      - per: 1s\n')).message).toBe(
      'aperture.yaml:9: services[1].ratelimits[0].requests: missing: expected a positive integer',
    );
    expect(failure(service('    headers: [a, b]\n')).message).toBe(
      'aperture.yaml:8: services[1].headers: expected a mapping, got a list',
    );
    expect(failure(`${BASE}postgres:\n  port: [1]\n`).message).toBe(
      'aperture.yaml:4: postgres.port: expected a port number (1-65535), got a list',
    );
    expect(failure(`${BASE}services: {name: a}\n`).message).toBe(
      'aperture.yaml:3: services: expected a list, got a mapping',
    );
    expect(failure(`${BASE}listenaddr: 8081\n`).message).toBe(
      'aperture.yaml:3: listenaddr: expected an address such as "localhost:8081", got 8081',
    );
  });

  test('an address with a scheme', () => {
    expect(
      failure(`${BASE}services:\n  - name: a\n    address: "https://api.example.com/v1"\n`).message,
    ).toBe(
      'aperture.yaml:5: services[0].address: expected host:port without a scheme (put it in protocol, and a path in rewrite.prefix), got "https://api.example.com/v1"',
    );
  });

  test('the first problem in the file is reported, with a count of the rest', () => {
    expect(failure(`${BASE}services:\n  - name: a\n    address: x\n    price: cheap\n`).message).toBe(
      'aperture.yaml:5: services[0].address: expected a host:port address such as "127.0.0.1:10009", got "x" (and 1 more)',
    );
  });

  test('YAML that does not parse', () => {
    const e = failure(`${BASE}services: [\n  - a\n`);
    expect(e.line).toBeGreaterThanOrEqual(3);
    expect(e.message).toMatch(/^aperture\.yaml:\d+: invalid YAML: /);
    expect(failure(`${BASE}listenaddr: a\nlistenaddr: b\n`).message).toMatch(
      /^aperture\.yaml:4: invalid YAML: Map keys must be unique/,
    );
    expect(failure('a: 1\n---\nb: 2\n').message).toMatch(/^aperture\.yaml:\d+: invalid YAML: /);
    expect(failure('- a\n- b\n').message).toBe(
      'aperture.yaml:1: expected a mapping of config keys, got a list',
    );
    expect(failure(`${BASE}services:\n  - *nowhere\n`).message).toBe(
      'aperture.yaml:4: invalid YAML: the alias *nowhere has no anchor before it',
    );
  });

  test('keys reached through a << merge point at the anchor', () => {
    expect(failure(`${BASE}base: &b\n  address: "h:x"\nservices:\n  - <<: *b\n    name: a\n`).message).toBe(
      'aperture.yaml:4: services[0].address: expected a host:port address such as "127.0.0.1:10009", got "h:x"',
    );
  });

  test('__proto__ is refused wherever it is', () => {
    expect(failure(`${BASE}services: [{name: a, address: "h:1", headers: {__proto__: x}}]\n`).message).toBe(
      'aperture.yaml:3: services[0].headers.__proto__: this key is not allowed',
    );
  });

  test('two keys that differ only in case', () => {
    expect(failure(`${BASE}postgres:\n  requireSSL: true\n  requiressl: false\n`).message).toBe(
      'aperture.yaml:5: postgres.requiressl: duplicate key: requiressl is given twice',
    );
  });

  test('autocert, and half a TLS key pair', () => {
    expect(failure(`${BASE}autocert: true\n`).message).toMatch(
      /^aperture\.yaml:3: autocert: Let's Encrypt is not supported/,
    );
    expect(failure(`${BASE}tlscertpath: /etc/cert.pem\n`).message).toBe(
      'aperture.yaml:3: tlscertpath: needs tlskeypath too',
    );
  });

  test('the authenticator', () => {
    expect(failure('listenaddr: ":8081"\n').message).toBe(
      'aperture.yaml:1: authenticator: no Lightning backend: set uri (lnd://, cln://, phoenixd://, lnbits://, nostr+walletconnect://), lndhost with tlspath and macdir, backend: devnet, or disable: true',
    );
    expect(failure('authenticator:\n  lndhost: "localhost:8080"\n  macdir: /m\n').message).toBe(
      "aperture.yaml:1: authenticator.tlspath: missing: lndhost needs tlspath (LND's tls.cert)",
    );
    expect(failure('authenticator:\n  backend: cln\n').message).toBe(
      'aperture.yaml:1: authenticator.uri: missing: backend cln needs a wallet uri (cln://…)',
    );
    expect(failure('authenticator:\n  backend: devnet\n  network: mainnet\n').message).toBe(
      'aperture.yaml:3: authenticator.network: the devnet is regtest, not mainnet',
    );
    expect(failure('authenticator:\n  backend: nwc\n  uri: "lnd://h:1?macaroon=00"\n').message).toBe(
      'aperture.yaml:2: authenticator.backend: "nwc" does not match the uri, which is for lnd (lnd://)',
    );
    expect(failure(`${BASE}  enablesessions: true\n`).message).toBe(
      'aperture.yaml:3: authenticator.enablesessions: needs enablempp: true',
    );
  });

  test('a wallet URI is never echoed: it carries credentials', () => {
    const e = failure('authenticator:\n  uri: "https://user:hunter2@wallet.example"\n');
    expect(e.message).toBe(
      'aperture.yaml:2: authenticator.uri: expected a wallet URI starting with lnd://, cln://, phoenixd://, lnbits:// or nostr+walletconnect://, got https://',
    );
    expect(failure(`redis:\n  url: "http://:hunter2@r:6379"\n${BASE}`).message).not.toContain('hunter2');
  });

  test('redis.prefix: a short key prefix of safe characters', () => {
    expect(failure(`redis:\n  url: "redis://r"\n  prefix: "a b"\n${BASE}`).message).toBe(
      'aperture.yaml:3: redis.prefix: expected 1 to 64 of A-Z a-z 0-9 : _ . -, got "a b"',
    );
  });

  test('services that cannot be paid or priced', () => {
    expect(
      failure('authenticator:\n  disable: true\nservices:\n  - name: a\n    address: "h:1"\n').message,
    ).toBe(
      'aperture.yaml:4: services[0].auth: must be off: authenticator.disable is true, so nothing can be paid',
    );
    expect(failure(service('    authscheme: mpp\n')).message).toBe(
      'aperture.yaml:8: services[1].authscheme: "mpp" needs authenticator.enablempp: true',
    );
    expect(failure(service('    dynamicprice:\n      enabled: true\n      insecure: true\n')).message).toBe(
      'aperture.yaml:8: services[1].dynamicprice.grpcaddress: missing: required when enabled (or httpurl)',
    );
    expect(failure(service('    dynamicprice:\n      metered: true\n')).message).toBe(
      'aperture.yaml:9: services[1].dynamicprice.metered: needs dynamicprice.enabled: true',
    );
    expect(failure(service('    ratelimits:\n      - requests: 0\n        per: 1s\n')).message).toBe(
      'aperture.yaml:9: services[1].ratelimits[0].requests: expected a positive integer, got 0',
    );
    expect(failure(service('    rewrite:\n      prefix: api\n')).message).toBe(
      'aperture.yaml:9: services[1].rewrite.prefix: expected an absolute path such as "/api/v1", got "api"',
    );
  });

  test('pricers and prepaid credit', () => {
    const parse = (extra: string) =>
      Config.parse(service(extra), 'aperture.yaml', { env: {} }).config.services[1]!;
    expect(
      parse(
        '    dynamicprice:\n      enabled: true\n      httpurl: "http://127.0.0.1:9/price"\n      timeout: 500ms\n',
      ).dynamicprice,
    ).toEqual({
      enabled: true,
      grpcaddress: undefined,
      httpurl: new URL('http://127.0.0.1:9/price'),
      insecure: true,
      tlscertpath: undefined,
      metered: false,
      usagetailbytes: 16_384,
      timeout: 500,
    });
    expect(parse('    price: 2\n    prepaid:\n      credit: 500\n')).toMatchObject({
      price: 2,
      prepaid: { credit: 500 },
    });
    expect(parse('').prepaid).toBeUndefined();
    expect(
      failure(
        service(
          '    dynamicprice:\n      enabled: true\n      grpcaddress: "h:1"\n      httpurl: "http://h/p"\n',
        ),
      ).message,
    ).toBe(
      'aperture.yaml:11: services[1].dynamicprice.httpurl: give either grpcaddress or httpurl, not both',
    );
    expect(
      failure(service('    dynamicprice:\n      enabled: true\n      httpurl: "ftp://h/p"\n')).message,
    ).toBe(
      'aperture.yaml:10: services[1].dynamicprice.httpurl: expected an http:// or https:// URL, got "ftp://h/p"',
    );
    expect(
      failure(
        service('    dynamicprice:\n      enabled: true\n      httpurl: "http://h/p"\n      metered: true\n'),
      ).message,
    ).toMatch(/^aperture\.yaml:11: services\[1\]\.dynamicprice\.metered: needs a gRPC pricer/);
    expect(
      failure(
        service(
          '    dynamicprice:\n      enabled: true\n      grpcaddress: "h:1"\n      insecure: true\n      timeout: 0s\n',
        ),
      ).message,
    ).toMatch(/^aperture\.yaml:12: services\[1\]\.dynamicprice\.timeout: expected a positive duration/);
    expect(failure(service('    prepaid:\n      credit: 0\n')).message).toBe(
      'aperture.yaml:9: services[1].prepaid.credit: expected a positive integer, got 0',
    );
    expect(
      failure(
        service(
          '    dynamicprice:\n      enabled: true\n      grpcaddress: "h:1"\n      insecure: true\n      metered: true\n    prepaid:\n      credit: 9\n',
        ),
      ).message,
    ).toMatch(/services\[1\]\.prepaid\.credit: cannot be combined with dynamicprice\.metered/);
  });

  test('bad header and constraint entries', () => {
    expect(failure(service('    headers:\n      "Bad Name": x\n')).message).toBe(
      'aperture.yaml:9: services[1].headers["Bad Name"]: not a valid HTTP header name',
    );
    expect(failure(service(`    headers:\n      X-Key: "\${MISSING}"\n`)).message).toBe(
      'aperture.yaml:9: services[1].headers.X-Key: environment variable MISSING is not set',
    );
    expect(failure(service(`    headers:\n      X-Key: "\${EMPTY}"\n`), { env: { EMPTY: '' } }).message).toBe(
      'aperture.yaml:9: services[1].headers.X-Key: environment variable EMPTY is not set',
    );
    expect(
      failure(service(`    headers:\n      X-Key: "a\${NL}b"\n`), { env: { NL: '\r\nX: y' } }).message,
    ).toBe('aperture.yaml:9: services[1].headers.X-Key: the value contains a line break or NUL');
    expect(failure(service('    headers:\n      X-Key: "!file+md5:/etc/hosts"\n')).message).toBe(
      'aperture.yaml:9: services[1].headers.X-Key: expected !file+hex:<path> or !file+base64:<path>, got "!file+md5"',
    );
    expect(failure(service('    headers:\n      X-Key: "!file+hex:/nonexistent/key"\n')).message).toBe(
      'aperture.yaml:9: services[1].headers.X-Key: cannot read /nonexistent/key (ENOENT)',
    );
    expect(failure(service('    constraints:\n      "a=b": 1\n')).message).toBe(
      'aperture.yaml:9: services[1].constraints["a=b"]: a caveat condition has no spaces or "="',
    );
  });

  test('a file that cannot be read has no line', () => {
    const e = (() => {
      try {
        Config.load('/nonexistent/aperture.yaml');
      } catch (error) {
        return error as ConfigError;
      }
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect(e!.message).toBe('/nonexistent/aperture.yaml: cannot read the config file (ENOENT)');
    expect(e!.line).toBeUndefined();
  });
});

describe('keys: case, aliases, unsupported and unknown', () => {
  test('keys match case-insensitively, and Go field names are accepted', () => {
    const { config, warnings } = Config.parse(
      `${BASE}ListenAddr: "[::1]:9443"\nsqlite:\n  DatabaseFileName: /data/g.db\npostgres:\n  maxopenconnections: 7\nadmin:\n  corsorigins: ["https://a.example"]\n`,
      'a.yaml',
      { env: {} },
    );
    expect(warnings).toEqual([]);
    expect(config.listenaddr).toEqual({ host: '::1', port: 9443 });
    expect(config.sqlite.dbfile).toBe('/data/g.db');
    expect(config.postgres.maxconnections).toBe(7);
    expect(config.admin.corsorigin).toEqual(['https://a.example']);
  });

  test('a switch set to false asks for nothing and is not reported', () => {
    expect(Config.parse(`${BASE}servestatic: false\nstrictverify: false\n`, 'a.yaml').warnings).toEqual([]);
    expect(names(Config.parse(`${BASE}servestatic: true\nstrictverify: true\n`, 'a.yaml').warnings)).toEqual([
      'servestatic',
      'strictverify',
    ]);
  });

  test('unknown keys are warned about with their line, never silently dropped', () => {
    const { warnings } = Config.parse(
      `${BASE}listenadr: ":1"\nfrobnicate: 1\nadmin:\n  enabeld: true\n`,
      'a.yaml',
    );
    expect(warnings).toEqual([
      'a.yaml:3: config key listenadr is unknown and ignored (did you mean listenaddr?)',
      'a.yaml:4: config key frobnicate is unknown and ignored',
      'a.yaml:6: config key admin.enabeld is unknown and ignored (did you mean enabled?)',
    ]);
  });

  test("YAML's own warnings are passed on", () => {
    const { config, warnings } = Config.parse(`${BASE}listenaddr: !weird ":8081"\n`, 'a.yaml');
    expect(config.listenaddr).toEqual({ host: '', port: 8081 });
    expect(warnings).toEqual(['a.yaml:3: YAML: Unresolved tag: !weird']);
  });

  test('per-subsystem debug levels are warned about', () => {
    const { config, warnings } = Config.parse(`${BASE}debuglevel: "trace,PRXY=debug"\n`, 'a.yaml');
    expect(config.debuglevel).toBe('trace');
    expect(warnings).toEqual([
      'a.yaml:3: config key debuglevel has per-subsystem levels (PRXY=debug) that l402 ignores',
    ]);
  });

  test('our keys', () => {
    const { config } = Config.parse(
      [
        'authenticator:',
        `  uri: "lnbits+https://lnbits.example?key=\${LNBITS_KEY}"`,
        'secrets: derived',
        'trustedproxies: ["10.0.0.0/8", "::1"]',
        'blocklist: ["192.0.2.1", "2001:db8::/32"]',
        'redis:',
        `  url: "rediss://:\${REDIS_PASSWORD}@cache:6380"`,
        'limits:',
        '  maxheaderbytes: 8192',
        '  maxbodybytes: 1048576',
        '  responsetimeout: 2m',
        'tlscertpath: /etc/l402/cert.pem',
        'tlskeypath: /etc/l402/key.pem',
        'dashboard:',
        '  enabled: false',
        '',
      ].join('\n'),
      '/etc/l402/gateway.yaml',
      { env: { LNBITS_KEY: 'k1', REDIS_PASSWORD: 'p1' } },
    );
    expect(config.authenticator.wallet).toEqual({
      backend: 'lnbits',
      uri: 'lnbits+https://lnbits.example?key=k1',
    });
    expect(config.secrets.mode).toBe('derived');
    expect(config.trustedproxies).toEqual(['10.0.0.0/8', '::1']);
    expect(config.blocklist).toEqual(['192.0.2.1', '2001:db8::/32']);
    expect(config.redis).toEqual({ url: 'rediss://:p1@cache:6380' });
    expect(config.limits).toEqual({
      maxheaderbytes: 8192,
      maxbodybytes: 1_048_576,
      headerstimeout: 10_000,
      connecttimeout: 10_000,
      responsetimeout: 120_000,
    });
    expect([config.tlscertpath, config.tlskeypath, config.tlsselfsigned]).toEqual([
      '/etc/l402/cert.pem',
      '/etc/l402/key.pem',
      false,
    ]);
    expect(config.dashboard.enabled).toBe(false);
    expect(failure(`${BASE}trustedproxies: ["10.0.0.0/33"]\n`).message).toBe(
      'aperture.yaml:3: trustedproxies[0]: expected an IP address or CIDR range such as "10.0.0.0/8", got "10.0.0.0/33"',
    );
    expect(failure(`${BASE}secrets: stored\n`).message).toBe(
      'aperture.yaml:3: secrets.mode: expected "random" or "derived", got "stored"',
    );
  });

  test('basedir defaults to $L402_HOME, and relative paths follow the config file', () => {
    const { config } = Config.parse(
      `${BASE}sqlite:\n  dbfile: data/g.db\nadmin:\n  macaroonpath: "~/admin.macaroon"\n`,
      '/srv/conf/gateway.yaml',
      { env: { L402_HOME: '/var/lib/l402' } },
    );
    expect(config.basedir).toBe('/var/lib/l402');
    expect(config.tlscertpath).toBe('/var/lib/l402/tls.cert');
    expect(config.secrets.masterkeypath).toBe('/var/lib/l402/master.key');
    expect(config.sqlite.dbfile).toBe('/srv/conf/data/g.db');
    expect(config.admin.macaroonpath).toMatch(/\/admin\.macaroon$/);
    expect(config.admin.macaroonpath.startsWith('~')).toBe(false);
  });
});

describe(`header values: \${ENV} and !file+hex / !file+base64`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'l402-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'key.bin'), Uint8Array.of(0xde, 0xad, 0xbe, 0xef));

  test('expands from options.env and reads files relative to the config file', () => {
    const file = join(dir, 'aperture.yaml');
    writeFileSync(
      file,
      [
        BASE,
        'services:',
        '  - name: api',
        '    address: "127.0.0.1:9000"',
        '    headers:',
        `      Authorization: "Bearer \${API_KEY}"`,
        '      X-Hex: "!file+hex:secrets/key.bin"',
        `      X-Base64: "!file+base64:\${SECRETS}/key.bin"`,
        `      X-Unquoted: !file+hex:${join(dir, 'secrets', 'key.bin')}`,
        '      X-Empty:',
        '',
      ].join('\n'),
    );
    const { config, warnings } = Config.load(file, {
      env: { API_KEY: 'sk-123', SECRETS: join(dir, 'secrets') },
    });
    expect(warnings).toEqual([]);
    expect(config.services[0]!.headers).toEqual({
      authorization: 'Bearer sk-123',
      'x-hex': 'deadbeef',
      'x-base64': '3q2+7w==',
      'x-unquoted': 'deadbeef',
      'x-empty': '',
    });
  });

  test('refuses a directory', () => {
    expect(
      failure(
        `${BASE}services:\n  - name: a\n    address: "h:1"\n    headers:\n      X: "!file+hex:${dir}"\n`,
      ).message,
    ).toBe(`aperture.yaml:7: services[0].headers.X: ${dir} is not a regular file`);
  });
});

describe('defaults', () => {
  const upstream = { host: '127.0.0.1', port: 41234 };
  const config = Config.defaults('/home/me/.l402', { upstream });

  test('loopback HTTP, SQLite in home, the devnet, and the demo services', () => {
    expect(config.listenaddr).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.insecure).toBe(true);
    expect(config.basedir).toBe('/home/me/.l402');
    expect(config.dbbackend).toBe('sqlite');
    expect(config.sqlite.dbfile).toBe('/home/me/.l402/gateway.db');
    expect(config.authenticator.wallet).toEqual({ backend: 'devnet' });
    expect(config.authenticator.network).toBe('regtest');
    expect(config.services.map((s) => [s.name, s.auth.kind, s.price, s.address])).toEqual([
      ['free', 'off', 1, upstream],
      ['paid', 'on', 21, upstream],
    ]);
    const [free, paid] = config.services;
    expect(free!.pathregexp!.test('/free/hello')).toBe(true);
    expect(free!.pathregexp!.test('/freebies')).toBe(false);
    expect(paid!.pathregexp!.test('/paid')).toBe(true);
  });

  test('is what its text parses to, without warnings', () => {
    const parsed = Config.parse(Config.defaultsText('/home/me/.l402', { upstream }), 'gateway.yaml', {
      env: {},
    });
    expect(parsed.warnings).toEqual([]);
    expect(parsed.config).toEqual(config);
  });
});

describe('immutability', () => {
  const { config } = Config.load(SAMPLE, { env: {} });

  test('the whole object is frozen', () => {
    const unfrozen: string[] = [];
    const visit = (value: unknown, path: string) => {
      if (typeof value !== 'object' || value === null) return;
      if (!Object.isFrozen(value)) unfrozen.push(path);
      for (const [key, item] of Object.entries(value)) visit(item, `${path}.${key}`);
    };
    visit(config, 'config');
    expect(unfrozen).toEqual([]);
    expect(() => {
      (config as { insecure: boolean }).insecure = true;
    }).toThrow(TypeError);
    expect(() => {
      (config.services as Config.Service[]).push(config.services[0]!);
    }).toThrow(TypeError);
    expect(() => {
      (config.services[0]!.constraints as Record<string, string>).x = 'y';
    }).toThrow(TypeError);
  });

  test('frozen regular expressions still match', () => {
    const s = config.services[0]!;
    expect(s.pathregexp!.test('/a')).toBe(true);
    expect(s.pathregexp!.test('/b')).toBe(true);
  });
});

describe('the README', () => {
  test("its dynamic prices and metering example loads, and so does the root README's", () => {
    const gateway = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const root = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const after = (text: string, heading: string) =>
      /```yaml\n([\s\S]*?)```/.exec(text.slice(text.indexOf(heading)))![1]!;
    const { config, warnings } = Config.parse(
      `${BASE}${after(gateway, '## Dynamic prices and metering')}`,
      'README.md',
      { env: {} },
    );
    expect(warnings).toEqual([]);
    const [llm, search, api] = config.services;
    expect(llm!.dynamicprice).toMatchObject({
      enabled: true,
      metered: true,
      timeout: 3_000,
      insecure: false,
    });
    expect(search!.dynamicprice).toMatchObject({
      enabled: true,
      httpurl: new URL('http://127.0.0.1:9000/price'),
    });
    expect(api).toMatchObject({ price: 2, prepaid: { credit: 1000 } });
    const rooted = Config.parse(`${BASE}${after(root, 'Prices can come from a pricer')}`, 'README.md', {
      env: {},
    });
    expect(rooted.warnings).toEqual([]);
    expect(rooted.config.services.map((s) => s.name)).toEqual(['api', 'search']);
  });

  test('its example runs and says what it shows', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const block = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    const dir = mkdtempSync(join(tmpdir(), 'l402-gateway-readme-'));
    try {
      const file = join(dir, 'example.ts');
      writeFileSync(
        file,
        `${block}\nexport const results = { price: config.services[0]?.price, wallet: config.authenticator.wallet, warning: warnings[0], message };\n`,
      );
      const { results } = await import(file);
      // Each `// …` comment of the example, checked.
      const stated = [...block.matchAll(/^(.*?); \/\/ (.*)$/gm)].map((m) => m[2]);
      expect(stated).toEqual([
        '21',
        `{ backend: 'lnd', url: 'https://127.0.0.1:8080', macaroonpath: '/home/me/.lnd/data/chain/bitcoin/mainnet/invoice.macaroon', tlspath: '/home/me/.lnd/tls.cert' }`,
        `'${results.warning}'`,
        `'${results.message}'`,
      ]);
      expect(results.price).toBe(21);
      expect(results.wallet).toEqual({
        backend: 'lnd',
        url: 'https://127.0.0.1:8080',
        macaroonpath: '/home/me/.lnd/data/chain/bitcoin/mainnet/invoice.macaroon',
        tlspath: '/home/me/.lnd/tls.cert',
      });
      expect(results.warning).toMatch(/^aperture\.yaml:\d+: config key hashmail is not supported/);
      expect(results.message).toMatch(
        /^aperture\.yaml:\d+: services\[0\]\.price: expected a non-negative integer, got "cheap"$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
