/** Builds a realistic wedding-platform database inside PostgreSQL (generate_series, not row by row from Node). */
import pg from 'pg';
import { ensureDatabase } from '../catalog/db.js';
import { ConflictError } from '../errors.js';
import { seedAppSchema } from './app-schema.js';

const SCHEMA = `
CREATE TYPE rsvp_status AS ENUM ('pending', 'accepted', 'declined', 'maybe');
CREATE TABLE venues (
  venue_id serial PRIMARY KEY, name text NOT NULL, city text NOT NULL, capacity int NOT NULL,
  location point, amenities text[] NOT NULL DEFAULT '{}'
);
CREATE TABLE suppliers (
  supplier_id serial PRIMARY KEY, name text NOT NULL, category text NOT NULL, email text,
  rating numeric(3,2), profile jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE weddings (
  wedding_id bigserial PRIMARY KEY, wedding_date date NOT NULL, venue_id int REFERENCES venues,
  title text NOT NULL, budget numeric(12,2) NOT NULL, time_zone text NOT NULL DEFAULT 'Europe/London',
  created_at timestamptz NOT NULL DEFAULT now(), preferences jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE couples (
  couple_id bigserial PRIMARY KEY, wedding_id bigint NOT NULL REFERENCES weddings ON DELETE CASCADE,
  partner_a text NOT NULL, partner_b text NOT NULL, email text, phone text
);
CREATE TABLE guests (
  guest_id bigserial PRIMARY KEY, wedding_id bigint NOT NULL REFERENCES weddings ON DELETE CASCADE,
  full_name text NOT NULL, email text, dietary text, plus_one boolean NOT NULL DEFAULT false,
  table_no int, tags text[], notes text
);
CREATE TABLE rsvps (
  rsvp_id bigserial PRIMARY KEY, wedding_id bigint NOT NULL REFERENCES weddings ON DELETE CASCADE,
  guest_id bigint NOT NULL REFERENCES guests ON DELETE CASCADE, status rsvp_status NOT NULL,
  responded_at timestamptz, message text
);
CREATE TABLE payments (
  payment_id bigserial PRIMARY KEY, wedding_id bigint NOT NULL REFERENCES weddings ON DELETE CASCADE,
  supplier_id int REFERENCES suppliers, amount numeric(12,2) NOT NULL, currency char(3) NOT NULL DEFAULT 'GBP',
  card_last4 char(4), paid_at timestamptz, reference text NOT NULL
);
CREATE TABLE timeline_events (
  event_id bigserial PRIMARY KEY, wedding_id bigint NOT NULL REFERENCES weddings ON DELETE CASCADE,
  starts_at timestamptz NOT NULL, duration interval NOT NULL, title text NOT NULL, details jsonb
);
CREATE TABLE portfolio_items (
  item_id bigserial PRIMARY KEY, supplier_id int NOT NULL REFERENCES suppliers ON DELETE CASCADE,
  path text NOT NULL, caption text, taken_on date, sha256 bytea
);
CREATE TABLE contracts (
  contract_id bigserial PRIMARY KEY, wedding_id bigint NOT NULL REFERENCES weddings ON DELETE CASCADE,
  supplier_id int REFERENCES suppliers, signed_at timestamptz, terms text NOT NULL, document bytea
);
CREATE TABLE bookings (
  booking_id bigserial PRIMARY KEY, wedding_id bigint NOT NULL REFERENCES weddings ON DELETE CASCADE,
  supplier_id int NOT NULL REFERENCES suppliers, booked_for tstzrange, price numeric(12,2), status text NOT NULL
);
CREATE INDEX guests_wedding ON guests (wedding_id);
CREATE INDEX rsvps_wedding ON rsvps (wedding_id);
CREATE INDEX payments_wedding ON payments (wedding_id);
CREATE INDEX timeline_wedding ON timeline_events (wedding_id, starts_at);
CREATE INDEX contracts_wedding ON contracts (wedding_id);
CREATE INDEX bookings_wedding ON bookings (wedding_id);
CREATE INDEX weddings_date ON weddings (wedding_date);
CREATE UNIQUE INDEX guests_email ON guests (wedding_id, email);
`;

/** Counts per unit of scale: scale 1 is about 1 GB of table data. */
function counts(scale: number) {
  const n = (x: number) => Math.max(1, Math.round(x * scale));
  return { venues: n(500), suppliers: n(2000), weddings: n(20000), guestsPer: 150, catalogue: n(500) };
}
type Counts = ReturnType<typeof counts>;

export async function seedDatabase(url: string, opts: { scale: number; force?: boolean }): Promise<void> {
  if (opts.force) await dropDatabase(url);
  await ensureDatabase(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const k = counts(opts.scale);
  try {
    const seeded = await c.query(
      `SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'weddings'`,
    );
    if (seeded.rowCount)
      throw new ConflictError(`${url.replace(/\/\/[^@]*@/, '//')} is already seeded; use --force`);
    // the order of the inserts that draw random() is fixed by this seed: keep it, and draw no more
    await c.query('SELECT setseed(0.42)');
    await c.query(SCHEMA);
    await seedPlaces(c, k);
    await seedGuests(c, k);
    await seedPlanning(c, k);
    await seedAppSchema(c, { catalogue: k.catalogue });
    // fresh statistics, as a live database has: the backup's ordered scans then use the tenant indexes
    await c.query('ANALYZE');
  } finally {
    await c.end();
  }
}

async function dropDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.slice(1));
  u.pathname = '/postgres';
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

/** Venues, suppliers and the weddings that use them. */
async function seedPlaces(c: pg.Client, k: Counts): Promise<void> {
  await c.query(
    `INSERT INTO venues (name, city, capacity, location, amenities)
     SELECT 'Venue ' || i, (ARRAY['London','Kraków','Zürich','São Paulo','Kyoto','Dublin'])[1 + i % 6],
            50 + i % 400, point(i % 90, i % 180), (ARRAY['parking','garden','dance floor'])[1:1 + i % 3]
       FROM generate_series(1, $1) i`,
    [k.venues],
  );
  await c.query(
    `INSERT INTO suppliers (name, category, email, rating, profile)
     SELECT 'Supplier ' || i, (ARRAY['photographer','florist','caterer','band','planner'])[1 + i % 5],
            'supplier' || i || '@example.com', round((3 + random() * 2)::numeric, 2),
            jsonb_build_object('since', 2000 + i % 25, 'languages', jsonb_build_array('en', 'fr'))
       FROM generate_series(1, $1) i`,
    [k.suppliers],
  );
  await c.query(
    `INSERT INTO weddings (wedding_date, venue_id, title, budget, preferences)
     SELECT current_date + (i % 900) - 200, 1 + i % $2, 'Wedding of ' || md5(i::text), (5000 + i % 50000)::numeric,
            jsonb_build_object('theme', (ARRAY['rustic','classic','beach','garden'])[1 + i % 4], 'guests', 150)
       FROM generate_series(1, $1) i`,
    [k.weddings, k.venues],
  );
}

/** Each wedding's couple, guests and their RSVPs. */
async function seedGuests(c: pg.Client, k: Counts): Promise<void> {
  await c.query(
    `INSERT INTO couples (wedding_id, partner_a, partner_b, email, phone)
     SELECT w, 'Zoë ' || w, 'José ' || w, 'couple' || w || '@example.com', '+44 7700 ' || lpad((w % 999999)::text, 6, '0')
       FROM generate_series(1, $1) w`,
    [k.weddings],
  );
  await c.query(
    `INSERT INTO guests (wedding_id, full_name, email, dietary, plus_one, table_no, tags, notes)
     SELECT w, 'Guest ' || g || ' of ' || w || ' Øyvind-Łukasz', 'g' || g || '.' || w || '@example.com',
            (ARRAY[NULL,'vegetarian','vegan','gluten-free','halal'])[1 + (g + w) % 5], g % 3 = 0, 1 + g % 20,
            (ARRAY['family','friends','work'])[1 + g % 3 : 1 + g % 3], repeat('note ', g % 12)
       FROM generate_series(1, $1) w, generate_series(1, $2) g`,
    [k.weddings, k.guestsPer],
  );
  await c.query(
    `INSERT INTO rsvps (wedding_id, guest_id, status, responded_at, message)
     SELECT wedding_id, guest_id, (ARRAY['pending','accepted','declined','maybe'])[1 + guest_id % 4]::rsvp_status,
            CASE WHEN guest_id % 4 = 0 THEN NULL ELSE now() - (guest_id % 300) * interval '1 hour' END,
            CASE WHEN guest_id % 7 = 0 THEN 'Can''t wait! 🎉' END
       FROM guests`,
  );
}

/** Money, the day's timeline and the suppliers' work: payments, events, portfolios, contracts, bookings. */
async function seedPlanning(c: pg.Client, k: Counts): Promise<void> {
  await c.query(
    `INSERT INTO payments (wedding_id, supplier_id, amount, card_last4, paid_at, reference)
     SELECT w, 1 + (w * p) % $2, round((50 + random() * 5000)::numeric, 2), lpad(((w * p) % 10000)::text, 4, '0'),
            now() - p * interval '3 days', 'PAY-' || w || '-' || p
       FROM generate_series(1, $1) w, generate_series(1, 20) p`,
    [k.weddings, k.suppliers],
  );
  await c.query(
    `INSERT INTO timeline_events (wedding_id, starts_at, duration, title, details)
     SELECT w, (current_date + (w % 900) - 200)::timestamptz + e * interval '20 minutes', interval '15 minutes' * (1 + e % 4),
            (ARRAY['Ceremony','Drinks','Dinner','Speeches','First dance','Cake'])[1 + e % 6],
            CASE WHEN e % 2 = 0 THEN jsonb_build_object('room', 'Hall ' || e % 3) END
       FROM generate_series(1, $1) w, generate_series(1, 30) e`,
    [k.weddings],
  );
  await c.query(
    `INSERT INTO portfolio_items (supplier_id, path, caption, taken_on, sha256)
     SELECT s, 'suppliers/' || s || '/photo-' || i || '.jpg', 'Shot ' || i, current_date - i, sha256(convert_to(s || '/' || i, 'UTF8'))
       FROM generate_series(1, $1) s, generate_series(1, 20) i`,
    [k.suppliers],
  );
  await c.query(
    `INSERT INTO contracts (wedding_id, supplier_id, signed_at, terms, document)
     SELECT w, 1 + (w + n) % $2, now() - n * interval '10 days', repeat('Clause ' || n || '. ', 20),
            decode(repeat(md5((w * 10 + n)::text), 32), 'hex')
       FROM generate_series(1, $1) w, generate_series(1, 5) n`,
    [k.weddings, k.suppliers],
  );
  await c.query(
    `INSERT INTO bookings (wedding_id, supplier_id, booked_for, price, status)
     SELECT w, 1 + (w * b) % $2, tstzrange(now() + b * interval '1 day', now() + b * interval '1 day' + interval '4 hours'),
            round((100 + random() * 3000)::numeric, 2), (ARRAY['held','confirmed','cancelled'])[1 + b % 3]
       FROM generate_series(1, $1) w, generate_series(1, 10) b`,
    [k.weddings, k.suppliers],
  );
}
