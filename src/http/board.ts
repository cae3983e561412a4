/** Bull Board under /admin for a person with a browser: Basic login, its static files, no outside fonts, same-origin writes. */
import { createRequire } from 'node:module';
import path from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type RequestHandler, type Router } from 'express';
import type { AppContext } from '../context.js';
import { ForbiddenError } from '../errors.js';
import { audit, authenticate, requireScope } from './auth.js';

export const ADMIN_REALM = 'wedvault admin';

const uiDist = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@bull-board/ui/package.json')),
  'dist',
);

/** What the board's page may load: only this origin (its scripts, styles, API); never a CDN, never in a frame. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

// Any stylesheet from another host: the board's template links IBM Plex from Google Fonts; its CSS
// falls back to system-ui and ui-monospace, so the page keeps working offline and tells no CDN who looks.
const OUTSIDE_STYLESHEET = /<link\b[^>]*\bhref="(?:https?:)?\/\/[^"]*"[^>]*>\s*/gi;

type RenderCallback = (err: Error | null, html?: string) => void;
type Engine = (file: string, options: object, callback: RenderCallback) => void;

/** Wraps the board's template engine so every rendered page leaves out outside stylesheets. */
function withoutOutsideStylesheets(views: Express): void {
  // Express keeps registered engines by extension; the board registers ejs for its index.ejs
  const engines = (views as unknown as { engines: Record<string, Engine | undefined> }).engines;
  const render = engines['.ejs'];
  if (!render) throw new Error('Bull Board no longer renders with ejs: review the font override');
  views.engine('ejs', (file, options, callback) =>
    render(file, options, (err, html) => callback(err, html?.replace(OUTSIDE_STYLESHEET, ''))),
  );
}

/**
 * A browser sends cached Basic credentials with any request to this origin, including one a
 * foreign page triggers: a write must come from this origin. Sec-Fetch-Site is set by the browser
 * itself and survives a proxy that rewrites Host, so it decides when present; older browsers are
 * judged by Origin. Clients that are not browsers send neither header and pass.
 */
const sameOriginWrites: RequestHandler = (req, _res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  const crossSite =
    site !== undefined
      ? site !== 'same-origin' && site !== 'none'
      : origin !== undefined && (!URL.canParse(origin) || new URL(origin).host !== req.host);
  if (crossSite) next(new ForbiddenError('a write to /admin must come from this origin'));
  else next();
};

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.set('X-Content-Type-Options', 'nosniff');
  next();
};

/** Mounted at /admin: the board at /admin/queues for keys with the admin scope. */
export function adminRouter(ctx: AppContext): Router {
  const board = new ExpressAdapter();
  board.setBasePath('/admin/queues');
  createBullBoard({
    queues: Object.values(ctx.queues.queues).map((q) => new BullMQAdapter(q)),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'wedvault queues' } },
  });
  const views = board.getRouter() as Express;
  withoutOutsideStylesheets(views);

  const router = express.Router();
  // The board's scripts, styles and images are the public files of its npm package: served before
  // the key check, so they load for a logged-in page and a page load costs one key lookup, not fifteen.
  router.use('/queues/static', express.static(path.join(uiDist, 'static')));
  router.use(
    audit(ctx.db),
    authenticate(ctx.db, { basicRealm: ADMIN_REALM }),
    requireScope('admin'),
    sameOriginWrites,
    securityHeaders,
  );
  router.use('/queues', views);
  return router;
}
