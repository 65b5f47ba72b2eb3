/**
 * Which service a request is for, and on what terms: services are tried in config order, the first
 * whose `hostregexp` matches the `Host` (as sent, port included, as Aperture) and whose `pathregexp`
 * matches the path wins. Each service's terms become one Authority {@link Authority.Route}, built
 * once at start; the route for `authskipinvoicecreationpaths` is the same with `skipInvoice`.
 *
 * The path matched is the decoded path with dot segments resolved (what Go's `URL.Path` holds, minus
 * the dot segments Go leaves in): `/free/../paid/x` must not be let in by a rule for `/free`, and the
 * proxy forwards that same resolved path, so the backend serves what was judged.
 *
 * @example
 * const router = Router.create(config.services);
 * const target = router.match({ host: 'api.example.com', path: '/paid/x' });
 * target?.access; // 'paid'
 * target?.route;  // { service: 'paid', price: 21, capabilities: [], … }
 */
import type * as Authority from 'l402/server';
import type { Service } from './Config.js';

/** How a request for the target is let in. */
export type Access =
  /** `auth: off`, or a path in `authwhitelistpaths`. */
  | 'open'
  /** `auth: on`: a paid token, else the Authority's challenge. */
  | 'paid'
  /** `auth: freebie N`: a paid token, else one of the client's free requests, else the challenge. */
  | 'freebie';

/** A matched request: its service, how it is let in, and the Authority route for it. */
export interface Target {
  readonly service: Service;
  readonly access: Access;
  /** The terms the Authority judges a credential by and mints a challenge for. */
  readonly route: Authority.Route;
}

/** Matches requests to services; built once from the config (see {@link create}). */
export interface Router {
  /** The target of a request, `undefined` when no service matches (the gateway answers 404). */
  match(request: { readonly host: string; readonly path: string }): Target | undefined;
}

interface Entry {
  readonly service: Service;
  readonly route: Authority.Route;
  readonly skipInvoiceRoute: Authority.Route;
}

/**
 * The Authority route of a service: its price, the capabilities and constraints minted as caveats, and
 * the token lifetime (`timeout`).
 *
 * @example
 * routeOf(config.services[0]!); // { service: 'weather', price: 21, capabilities: ['forecast'], constraints: {}, timeout: 3600 }
 */
export function routeOf(service: Service): Authority.Route {
  return {
    service: service.name,
    price: service.price,
    capabilities: service.capabilities,
    constraints: service.constraints,
    timeout: service.timeout,
  };
}

/**
 * A router over `services`, in order.
 *
 * @example
 * Router.create(config.services).match({ host: 'localhost:8080', path: '/free/x' })?.service.name; // 'free'
 */
export function create(
  services: readonly Service[],
  /** Routes by service name that replace {@link routeOf}'s (dynamic prices, prepaid credit). */
  routes: ReadonlyMap<string, Authority.Route> = new Map(),
): Router {
  const entries: Entry[] = services.map((service) => {
    const route = routes.get(service.name) ?? routeOf(service);
    return { service, route, skipInvoiceRoute: { ...route, skipInvoice: true } };
  });
  return {
    match({ host, path }) {
      const entry = entries.find(
        ({ service }) => service.hostregexp.test(host) && (service.pathregexp?.test(path) ?? true),
      );
      if (entry === undefined) return undefined;
      const { service } = entry;
      const whitelisted = service.authwhitelistpaths.some((p) => p.test(path));
      const access: Access =
        service.auth.kind === 'off' || whitelisted ? 'open' : service.auth.kind === 'on' ? 'paid' : 'freebie';
      const skip = access !== 'open' && service.authskipinvoicecreationpaths.some((p) => p.test(path));
      return { service, access, route: skip ? entry.skipInvoiceRoute : entry.route };
    },
  };
}
