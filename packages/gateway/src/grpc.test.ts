/**
 * gRPC through the gateway, end to end: a real `@grpc/grpc-js` client calls a real `@grpc/grpc-js`
 * server (the `Greeter` of `fixtures/hello.proto`) through the gateway, paying the gateway's
 * invoices on the devnet, over h2c and over TLS on both legs.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Devnet, Tls } from '@l402/devnet';
import { Challenge, Credential, Macaroon } from 'l402';
import { type Backend, connect } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Config from './Config.js';
import * as Gateway from './Gateway.js';
import * as Log from './Log.js';

// ——— the Greeter, as a server and as a client ———

interface HelloRequest {
  readonly name: string;
  readonly count?: number;
}
interface HelloReply {
  readonly message: string;
}
type Callback = (error: grpc.ServiceError | null, reply?: HelloReply) => void;
type GreeterClient = grpc.Client & {
  SayHello(request: HelloRequest, metadata: grpc.Metadata, callback: Callback): grpc.ClientUnaryCall;
  SayHellos(request: HelloRequest, metadata: grpc.Metadata): grpc.ClientReadableStream<HelloReply>;
  Chat(metadata: grpc.Metadata): grpc.ClientDuplexStream<HelloRequest, HelloReply>;
};

const definition = protoLoader.loadSync(fileURLToPath(new URL('./fixtures/hello.proto', import.meta.url)));
const Greeter = (grpc.loadPackageDefinition(definition).hello as grpc.GrpcObject)
  .Greeter as grpc.ServiceClientConstructor;

/** The metadata of the last call the server took. */
let lastMetadata: grpc.Metadata | undefined;
/** Set by SayHellos once it has sent its first message; it sends the rest once this is called. */
let releaseStream: () => void = () => {};
let streamFinished = false;
let cancelled: Promise<void> = Promise.resolve();

const implementation: grpc.UntypedServiceImplementation = {
  SayHello(call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) {
    lastMetadata = call.metadata;
    if (call.request.name === 'missing') {
      const metadata = new grpc.Metadata();
      metadata.set('x-why', 'nobody by that name');
      callback({ code: grpc.status.NOT_FOUND, details: 'no greeting for missing', metadata });
      return;
    }
    callback(null, { message: `hello ${call.request.name}` });
  },
  async SayHellos(call: grpc.ServerWritableStream<HelloRequest, HelloReply>) {
    lastMetadata = call.metadata;
    streamFinished = false;
    let cancel: () => void = () => {};
    cancelled = new Promise((resolve) => {
      cancel = resolve;
    });
    call.on('cancelled', () => cancel());
    const released = new Promise<void>((resolve) => {
      releaseStream = resolve;
    });
    call.write({ message: `hello ${call.request.name} 1` });
    await released;
    if (call.cancelled) return;
    for (let i = 2; i <= (call.request.count ?? 1); i++)
      call.write({ message: `hello ${call.request.name} ${i}` });
    const trailers = new grpc.Metadata();
    trailers.set('x-total', String(call.request.count));
    streamFinished = true;
    call.end(trailers);
  },
  Chat(call: grpc.ServerDuplexStream<HelloRequest, HelloReply>) {
    lastMetadata = call.metadata;
    let n = 0;
    call.on('data', (request: HelloRequest) => {
      n += 1;
      call.write({ message: `hello ${request.name}` });
    });
    call.on('end', () => {
      const trailers = new grpc.Metadata();
      trailers.set('x-heard', String(n));
      call.end(trailers);
    });
  },
};

async function serve(credentials: grpc.ServerCredentials): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  server.addService(Greeter.service, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { server, address: `127.0.0.1:${port}` };
}

function greeter(
  address: string,
  options: { credentials?: grpc.ChannelCredentials; authority?: string; tlsName?: string } = {},
): GreeterClient {
  const client = new Greeter(address, options.credentials ?? grpc.credentials.createInsecure(), {
    ...(options.authority !== undefined ? { 'grpc.default_authority': options.authority } : {}),
    ...(options.tlsName !== undefined ? { 'grpc.ssl_target_name_override': options.tlsName } : {}),
  }) as unknown as GreeterClient;
  clients.push(client);
  return client;
}

function sayHello(client: GreeterClient, name: string, metadata = new grpc.Metadata()) {
  return new Promise<{ reply?: HelloReply; error?: grpc.ServiceError }>((resolve) =>
    client.SayHello({ name }, metadata, (error, reply) =>
      resolve(error ? { error } : reply !== undefined ? { reply } : {}),
    ),
  );
}

// ——— the network, the backends and the gateway ———

const home = mkdtempSync(join(tmpdir(), 'l402-grpc-'));
const clients: GreeterClient[] = [];
const servers: grpc.Server[] = [];
let devnet: Devnet.Devnet;
let payer: Backend;
let gateway: Gateway.Gateway;
let upstream: string;
let closedPort: number;

/**
 * A bare HTTP/2 backend that answers the way gRPC clients cannot read: `grpc-status` in the response
 * headers, then an empty DATA frame ending the stream, and no trailers. It records what reached it.
 */
const raw = http2.createServer((request, response) => {
  rawSeen.push(request.rawHeaders);
  request.resume();
  request.on('end', () => {
    response.writeHead(200, {
      'content-type': 'application/grpc',
      'grpc-status': String(grpc.status.NOT_FOUND),
      'grpc-message': 'not here',
    });
    response.end();
  });
});
const rawSeen: string[][] = [];

beforeAll(async () => {
  devnet = await Devnet.start({ home, publish: false });
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
  const plain = await serve(grpc.ServerCredentials.createInsecure());
  servers.push(plain.server);
  upstream = plain.address;
  raw.listen(0, '127.0.0.1');
  await once(raw, 'listening');
  const probe = http2.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  closedPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  gateway = await start(`
services:
  - name: down
    hostregexp: '^down\\.example$'
    address: "127.0.0.1:${closedPort}"
    auth: off
  - name: raw
    hostregexp: '^raw\\.example$'
    address: "127.0.0.1:${(raw.address() as { port: number }).port}"
    auth: off
  - name: greeter
    pathregexp: '^/hello\\.Greeter/'
    address: "${upstream}"
    price: 21
`);
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const server of servers) server.forceShutdown();
  await Promise.all(gateways.map((g) => g.close({ graceMs: 1_000 })));
  raw.close();
  await payer?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

const gateways: Gateway.Gateway[] = [];
let dirs = 0;

async function start(services: string, top = 'insecure: true'): Promise<Gateway.Gateway> {
  const text = `
listenaddr: "127.0.0.1:8080"
${top}
basedir: ${JSON.stringify(join(home, `gw${++dirs}`))}
authenticator:
  uri: ${JSON.stringify(devnet.document.nodes.merchant!.uris.lnd)}
${services}`;
  const { config } = Config.parse(text, 'grpc.yaml', { env: {} });
  const started = await Gateway.start(config, { log: Log.silent, listen: { host: '127.0.0.1', port: 0 } });
  gateways.push(started);
  return started;
}

const hostOf = (url: string) => new URL(url).host;

let bought: Promise<grpc.Metadata> | undefined;

/**
 * Metadata carrying a paid token, as Aperture's gRPC clients send it: the hex macaroon with a
 * `preimage=` caveat under `macaroon`. Bought once, from an unpaid call's challenge.
 */
function paid(): Promise<grpc.Metadata> {
  bought ??= (async () => {
    const { error } = await sayHello(greeter(hostOf(gateway.url)), 'anyone');
    const offer = Challenge.l402(Challenge.parse(error!.metadata.get('www-authenticate') as string[]))!;
    const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
    const metadata = new grpc.Metadata();
    metadata.set(
      'macaroon',
      Credential.formatMacaroonHeader({ macaroon: Macaroon.decode(offer.macaroon), preimage }),
    );
    return metadata;
  })();
  return bought;
}

describe('gRPC through the gateway (h2c)', () => {
  it('answers an unpaid call with INTERNAL and the challenge in its metadata; the paid retry reaches the backend', async () => {
    const client = greeter(hostOf(gateway.url));
    const unpaid = await sayHello(client, 'alice');
    expect(unpaid.error?.code).toBe(grpc.status.INTERNAL);
    expect(unpaid.error?.details).toBe('payment required');
    const challenges = unpaid.error!.metadata.get('www-authenticate') as string[];
    const offers = Challenge.parse(challenges);
    expect(offers.map((o) => o.scheme)).toEqual(['LSAT', 'L402']);

    const offer = Challenge.l402(offers)!;
    const macaroon = Macaroon.decode(offer.macaroon);
    const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
    const metadata = new grpc.Metadata();
    metadata.set('macaroon', Credential.formatMacaroonHeader({ macaroon, preimage }));
    bought = Promise.resolve(metadata);

    const before = lastMetadata;
    const answer = await sayHello(client, 'alice', metadata);
    expect(answer).toEqual({ reply: { message: 'hello alice' } });
    expect(lastMetadata).not.toBe(before);
    // One Authorization field over HTTP/2: the first of Aperture's pair, the macaroon as presented.
    const presented = Credential.parseMacaroonHeader(metadata.get('macaroon')[0] as string);
    expect(lastMetadata!.get('authorization')).toEqual([Credential.format(presented, { scheme: 'LSAT' })]);
    expect(lastMetadata!.get('x-forwarded-for')).toEqual(['127.0.0.1']);
  });

  it('streams server messages as they are produced, then the status and the trailers', async () => {
    const call = greeter(hostOf(gateway.url)).SayHellos({ name: 'bob', count: 5 }, await paid());
    const received: string[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    const [first] = (await once(call, 'data')) as [HelloReply];
    expect(first.message).toBe('hello bob 1');
    expect(streamFinished).toBe(false);
    call.on('data', (reply: HelloReply) => received.push(reply.message));
    releaseStream();
    const { code, metadata } = await status;
    expect(code).toBe(grpc.status.OK);
    expect(metadata.get('x-total')).toEqual(['5']);
    expect(received).toEqual(['hello bob 2', 'hello bob 3', 'hello bob 4', 'hello bob 5']);
  });

  it('streams both ways: each request is answered before the next is sent', async () => {
    const call = greeter(hostOf(gateway.url)).Chat(await paid());
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    for (const name of ['carol', 'dave', 'erin']) {
      call.write({ name });
      const [reply] = (await once(call, 'data')) as [HelloReply];
      expect(reply.message).toBe(`hello ${name}`);
    }
    call.end();
    const { code, metadata } = await status;
    expect(code).toBe(grpc.status.OK);
    expect(metadata.get('x-heard')).toEqual(['3']);
  });

  it("relays the backend's error status, message and trailing metadata unchanged (trailers-only)", async () => {
    const { error } = await sayHello(greeter(hostOf(gateway.url)), 'missing', await paid());
    expect(error?.code).toBe(grpc.status.NOT_FOUND);
    expect(error?.details).toBe('no greeting for missing');
    expect(error?.metadata.get('x-why')).toEqual(['nobody by that name']);
  });

  it('cancels the backend call when the client cancels', async () => {
    const call = greeter(hostOf(gateway.url)).SayHellos({ name: 'frank', count: 3 }, await paid());
    call.on('error', () => {});
    await once(call, 'data');
    const backendSawIt = cancelled;
    call.cancel();
    await backendSawIt;
    releaseStream();
  });

  it('moves a grpc-status sent in the headers to the trailers', async () => {
    const client = greeter(hostOf(gateway.url), { authority: 'raw.example' });
    const { error } = await sayHello(client, 'gina', await paid());
    expect(error?.code).toBe(grpc.status.NOT_FOUND);
    expect(error?.details).toBe('not here');
    const seen = rawSeen[rawSeen.length - 1]!;
    const authorization = seen.filter((_, i) => i % 2 === 1 && seen[i - 1] === 'authorization');
    expect(authorization.map((value) => value.split(' ')[0])).toEqual(['LSAT']);
    expect(seen[seen.indexOf(':authority') + 1]).toBe(
      `127.0.0.1:${(raw.address() as { port: number }).port}`,
    );
    expect(seen[seen.indexOf('te') + 1]).toBe('trailers');
  });

  it('answers UNAVAILABLE "upstream unavailable" when the backend is down', async () => {
    const client = greeter(hostOf(gateway.url), { authority: 'down.example' });
    const { error } = await sayHello(client, 'hank');
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toBe('upstream unavailable');
  });

  it('answers UNIMPLEMENTED for a method no service matches', async () => {
    const client = new grpc.Client(hostOf(gateway.url), grpc.credentials.createInsecure());
    const error = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        '/other.Service/Call',
        (value: Buffer) => value,
        (value: Buffer) => value,
        Buffer.alloc(0),
        (e) => resolve(e),
      ),
    );
    client.close();
    expect(error?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(error?.details).toBe('not found: no service matches this request');
  });
});

describe('gRPC limits', () => {
  it('ends a call idle for writetimeout with UNAVAILABLE after its messages, and one over maxbodybytes with RESOURCE_EXHAUSTED', async () => {
    const limited = await start(
      `limits:
  maxbodybytes: 1000
services:
  - name: greeter
    address: "${upstream}"
    auth: off`,
      'insecure: true\nwritetimeout: 300ms',
    );
    const client = greeter(hostOf(limited.url));
    const call = client.SayHellos({ name: 'kim', count: 2 }, new grpc.Metadata());
    call.on('error', () => {});
    const [first] = (await once(call, 'data')) as [HelloReply];
    expect(first.message).toBe('hello kim 1');
    const backendSawIt = cancelled;
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    expect(status).toMatchObject({ code: grpc.status.UNAVAILABLE, details: 'upstream timed out' });
    await backendSawIt;
    releaseStream();

    const chat = client.Chat(new grpc.Metadata());
    chat.on('error', () => {});
    chat.write({ name: 'x'.repeat(2_000) });
    const over = await new Promise<grpc.StatusObject>((resolve) => chat.on('status', resolve));
    expect(over).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'request body too large' });
  });
});

describe('gRPC over TLS on both legs', () => {
  it('proxies unary and streaming calls from an h2 client to an h2 backend that pins its certificate', async () => {
    const backendCert = Tls.selfSigned({ hosts: ['127.0.0.1', 'localhost'] });
    const tls = await serve(
      grpc.ServerCredentials.createSsl(null, [
        { cert_chain: Buffer.from(backendCert.certPem), private_key: Buffer.from(backendCert.keyPem) },
      ]),
    );
    servers.push(tls.server);
    const certPath = join(home, 'backend.cert');
    writeFileSync(certPath, backendCert.certPem);
    const tlsGateway = await start(
      `services:
  - name: greeter
    address: "${tls.address}"
    protocol: https
    tlscertpath: ${JSON.stringify(certPath)}
    auth: off`,
      'insecure: false',
    );
    expect(tlsGateway.url).toMatch(/^https:/);
    const gatewayCert = readFileSync(join(home, `gw${dirs}`, 'tls.cert'));
    const client = greeter(hostOf(tlsGateway.url), {
      credentials: grpc.credentials.createSsl(gatewayCert),
      tlsName: 'localhost',
    });
    expect(await sayHello(client, 'ivy')).toEqual({ reply: { message: 'hello ivy' } });
    const call = client.SayHellos({ name: 'jay', count: 2 }, new grpc.Metadata());
    const messages: string[] = [];
    call.on('data', (reply: HelloReply) => {
      messages.push(reply.message);
      releaseStream();
    });
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    expect(status.code).toBe(grpc.status.OK);
    expect(messages).toEqual(['hello jay 1', 'hello jay 2']);
  });
});
