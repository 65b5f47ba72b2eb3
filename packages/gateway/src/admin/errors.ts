/**
 * Errors of the admin API, each with a stable `code` and the HTTP status it is answered with. The
 * message is one line, fit to show to the operator as it is (it never holds a secret).
 *
 * @example
 * throw new AdminError('L402_ADMIN_NOT_FOUND', 'service "api" not found');
 */

/** Every admin error code, and the status it maps to. */
export const STATUS = {
  L402_ADMIN_UNAUTHENTICATED: 401,
  L402_ADMIN_FORBIDDEN: 403,
  L402_ADMIN_BAD_REQUEST: 400,
  L402_ADMIN_NOT_FOUND: 404,
  L402_ADMIN_METHOD: 405,
  L402_ADMIN_CONFLICT: 409,
  L402_ADMIN_TOO_LARGE: 413,
  L402_ADMIN_UNSUPPORTED_MEDIA: 415,
  L402_ADMIN_UNAVAILABLE: 503,
} as const;

export type AdminCode = keyof typeof STATUS;

/** A request the admin API refuses; `status` is its HTTP status. */
export class AdminError extends Error {
  override name = 'AdminError';
  readonly code: AdminCode;
  readonly status: number;
  constructor(code: AdminCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = STATUS[code];
  }
}
