/**
 * The OpenAPI 3.1 document of the admin API, served at `/api/admin/openapi.json`. Written by hand to
 * say what `Admin.ts` and `schemas.ts` do (a test checks every route it lists answers as described).
 *
 * @example
 * document.paths['/api/admin/services'].post.requestBody; // the CreateService schema
 */
import { MAX_PRICE } from './schemas.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const int64 = { type: 'string', pattern: '^\\d+$', description: 'a 64-bit integer as a decimal string' };
const rfc3339 = { type: 'string', format: 'date-time' };

const ok = (schema: object, description = 'OK') => ({
  description,
  content: { 'application/json': { schema } },
});
const errors = {
  '400': { $ref: '#/components/responses/BadRequest' },
  '401': { $ref: '#/components/responses/Unauthenticated' },
};
const jsonBody = (schema: object) => ({ required: true, content: { 'application/json': { schema } } });
const queryParam = (name: string, schema: object, description: string) => ({
  name,
  in: 'query',
  required: false,
  schema,
  description,
});
const paging = [
  queryParam(
    'limit',
    { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
    'page size; larger values are capped at 1000',
  ),
  queryParam('offset', { type: 'integer', minimum: 0, default: 0 }, 'rows to skip'),
];
const secured = [{ adminMacaroon: [] }];

const serviceFields = {
  name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
  address: { type: 'string', description: 'backend host:port', maxLength: 300 },
  protocol: { type: 'string', enum: ['http', 'https'] },
  host_regexp: { type: 'string', description: 'RE2 syntax, matched against Host', maxLength: 1024 },
  path_regexp: {
    type: 'string',
    description: 'RE2 syntax, matched against the path; must not match /api/admin/ or /dashboard',
    maxLength: 1024,
  },
  price: {
    oneOf: [{ type: 'integer', minimum: 0, maximum: MAX_PRICE }, int64],
    description: 'satoshis per token (0 means 1)',
  },
  auth: { type: 'string', description: "'on', 'off' or 'freebie N'" },
  auth_scheme: {
    oneOf: [
      { type: 'string', enum: ['AUTH_SCHEME_L402', 'AUTH_SCHEME_MPP', 'AUTH_SCHEME_L402_MPP'] },
      { type: 'integer', enum: [0, 1, 2] },
    ],
  },
};

/** The document (a plain object; serialized as it is). */
export const document = {
  openapi: '3.1.0',
  info: {
    title: 'l402 gateway admin API',
    version: '1.0.0',
    description:
      "Aperture's admin REST API (adminrpc.Admin over grpc-gateway, proto field names, int64 as strings), plus a live feed, stats per time bucket and this document.",
  },
  components: {
    securitySchemes: {
      adminMacaroon: {
        type: 'apiKey',
        in: 'header',
        name: 'Grpc-Metadata-Macaroon',
        description:
          'the admin macaroon file (admin.macaroonpath) in hex; `Authorization: Macaroon <hex>` also works',
      },
    },
    responses: {
      BadRequest: {
        description: 'bad input; the message names each bad field',
        content: { 'application/json': { schema: ref('Error') } },
      },
      Unauthenticated: {
        description: 'missing or wrong admin macaroon',
        content: { 'application/json': { schema: ref('Error') } },
      },
      NotFound: {
        description: 'no such service or token',
        content: { 'application/json': { schema: ref('Error') } },
      },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['code', 'message', 'details', 'error'],
        properties: {
          code: { type: 'integer', description: 'gRPC status code, as grpc-gateway answers' },
          message: { type: 'string' },
          details: { type: 'array', items: {} },
          error: { type: 'string', description: 'stable l402 code, e.g. L402_ADMIN_UNAUTHENTICATED' },
        },
      },
      Status: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } },
      Info: {
        type: 'object',
        properties: {
          network: { type: 'string' },
          listen_addr: { type: 'string' },
          insecure: { type: 'boolean' },
          mpp_enabled: { type: 'boolean' },
          sessions_enabled: { type: 'boolean' },
          mpp_realm: { type: 'string' },
          store: { type: 'string' },
          lightning: { type: 'string' },
        },
      },
      Service: {
        type: 'object',
        required: Object.keys(serviceFields),
        properties: { ...serviceFields, price: int64, auth_scheme: serviceFields.auth_scheme.oneOf[0] },
      },
      CreateService: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'address'],
        properties: serviceFields,
      },
      UpdateService: {
        type: 'object',
        additionalProperties: false,
        description:
          'partial update: only the fields given change; name, if given, must be the one in the path',
        properties: serviceFields,
      },
      Transaction: {
        type: 'object',
        properties: {
          token_id: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          payment_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          service_name: { type: 'string' },
          price_sats: int64,
          state: { type: 'string', enum: ['pending', 'settled'] },
          created_at: rfc3339,
          settled_at: { type: 'string', description: 'RFC 3339, or empty while pending' },
          revoked: { type: 'boolean' },
        },
      },
      Stats: {
        type: 'object',
        properties: {
          total_revenue_sats: int64,
          transaction_count: { ...int64, description: 'settled transactions (payments)' },
          challenge_count: { ...int64, description: 'every transaction (each began as a 402 challenge)' },
          service_breakdown: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                service_name: { type: 'string' },
                total_revenue_sats: int64,
                transaction_count: int64,
                challenge_count: int64,
              },
            },
          },
          bucket_seconds: int64,
          buckets: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                start: rfc3339,
                revenue_sats: int64,
                transaction_count: int64,
                challenge_count: int64,
              },
            },
          },
        },
      },
    },
  },
  paths: {
    '/api/admin/health': {
      get: { operationId: 'GetHealth', security: [], responses: { '200': ok(ref('Status')) } },
    },
    '/api/admin/info': {
      get: { operationId: 'GetInfo', security: secured, responses: { '200': ok(ref('Info')), ...errors } },
    },
    '/api/admin/services': {
      get: {
        operationId: 'ListServices',
        security: secured,
        responses: {
          '200': ok({ type: 'object', properties: { services: { type: 'array', items: ref('Service') } } }),
          ...errors,
        },
      },
      post: {
        operationId: 'CreateService',
        security: secured,
        requestBody: jsonBody(ref('CreateService')),
        responses: {
          '200': ok(ref('Service'), 'created, persisted and serving'),
          '409': {
            description: 'a service of that name exists',
            content: { 'application/json': { schema: ref('Error') } },
          },
          '413': { description: 'body over 64 KiB' },
          '415': { description: 'body not application/json' },
          ...errors,
        },
      },
    },
    '/api/admin/services/{name}': {
      parameters: [{ name: 'name', in: 'path', required: true, schema: serviceFields.name }],
      put: {
        operationId: 'UpdateService',
        security: secured,
        requestBody: jsonBody(ref('UpdateService')),
        responses: {
          '200': ok(ref('Service'), 'updated, persisted and serving'),
          '404': { $ref: '#/components/responses/NotFound' },
          ...errors,
        },
      },
      delete: {
        operationId: 'DeleteService',
        security: secured,
        responses: {
          '200': ok(ref('Status')),
          '404': { $ref: '#/components/responses/NotFound' },
          ...errors,
        },
      },
    },
    '/api/admin/transactions': {
      get: {
        operationId: 'ListTransactions',
        security: secured,
        parameters: [
          ...paging,
          queryParam('service', serviceFields.name, 'only this service'),
          queryParam('state', { type: 'string', enum: ['pending', 'settled'] }, 'only this state'),
          queryParam('start_date', rfc3339, 'created at or after'),
          queryParam('end_date', rfc3339, 'created at or before'),
        ],
        responses: {
          '200': ok({
            type: 'object',
            properties: { transactions: { type: 'array', items: ref('Transaction') }, total_count: int64 },
          }),
          ...errors,
        },
      },
    },
    '/api/admin/tokens': {
      get: {
        operationId: 'ListTokens',
        security: secured,
        parameters: [...paging, queryParam('service', serviceFields.name, 'only this service')],
        responses: {
          '200': ok({
            type: 'object',
            properties: { tokens: { type: 'array', items: ref('Transaction') }, total_count: int64 },
          }),
          ...errors,
        },
      },
    },
    '/api/admin/tokens/{token_id}': {
      parameters: [
        {
          name: 'token_id',
          in: 'path',
          required: true,
          schema: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
        },
      ],
      delete: {
        operationId: 'RevokeToken',
        security: secured,
        description: 'refused by this gateway at once, by others on the same store within 500 ms',
        responses: {
          '200': ok(ref('Status')),
          '404': { $ref: '#/components/responses/NotFound' },
          ...errors,
        },
      },
    },
    '/api/admin/stats': {
      get: {
        operationId: 'GetStats',
        security: secured,
        parameters: [
          queryParam('from', rfc3339, 'transactions created at or after'),
          queryParam('to', rfc3339, 'transactions created at or before'),
          queryParam(
            'bucket',
            { type: 'integer', minimum: 1, maximum: 2678400 },
            'bucket width in seconds (at most 1000 buckets)',
          ),
        ],
        responses: { '200': ok(ref('Stats')), ...errors },
      },
    },
    '/api/admin/events': {
      get: {
        operationId: 'StreamEvents',
        security: secured,
        description:
          'server-sent events: `hello` once, then one `request` event (JSON: time, method, path, status, service, outcome, ms) per request the gateway answered',
        responses: {
          '200': {
            description: 'the stream',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          ...errors,
        },
      },
    },
    '/api/admin/login': {
      post: {
        operationId: 'Login',
        security: [],
        description:
          'trades the one-time dashboard code printed at start (valid 15 minutes, once) for the admin macaroon',
        requestBody: jsonBody({
          type: 'object',
          required: ['code'],
          properties: { code: { type: 'string', pattern: '^[0-9a-f]{32}$' } },
        }),
        responses: {
          '200': ok({ type: 'object', properties: { macaroon: { type: 'string' } } }),
          ...errors,
        },
      },
    },
    '/api/admin/openapi.json': {
      get: {
        operationId: 'OpenApi',
        security: [],
        responses: { '200': ok({ type: 'object' }, 'this document') },
      },
    },
  },
} as const;
