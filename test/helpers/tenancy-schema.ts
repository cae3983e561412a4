/** A source shaped like a real platform's, for tenancy: schemas, quoted names, FK chains, partitions, a cycle. */
import { query } from './pg.js';

export const TENANCY_SCHEMA = `
CREATE SCHEMA app;
CREATE TABLE app."Weddings" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "Ceremony Date" date NOT NULL, title text);
CREATE TABLE app.guests (guest_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  wedding_id bigint NOT NULL REFERENCES app."Weddings", plus_one_of bigint REFERENCES app.guests, name text);
CREATE TABLE app.rsvp_answers (answer_id bigserial PRIMARY KEY, guest_id bigint NOT NULL, answer text,
  CONSTRAINT rsvp_answers_guest_id_fkey FOREIGN KEY (guest_id) REFERENCES app.guests);
CREATE TABLE app.answer_notes (note_id serial PRIMARY KEY, answer_id bigint NOT NULL REFERENCES app.rsvp_answers);
CREATE TABLE app.tables (wedding_id bigint NOT NULL REFERENCES app."Weddings", table_no int NOT NULL,
  PRIMARY KEY (wedding_id, table_no));
CREATE TABLE app."Seating" (seat_id serial PRIMARY KEY, "Wedding Ref" bigint NOT NULL, table_no int NOT NULL,
  CONSTRAINT seating_table_fkey FOREIGN KEY ("Wedding Ref", table_no) REFERENCES app.tables (wedding_id, table_no));
CREATE TABLE app.rsvp_events (event_id bigint NOT NULL, guest_id bigint NOT NULL REFERENCES app.guests,
  at date NOT NULL, PRIMARY KEY (event_id, at)) PARTITION BY RANGE (at);
CREATE TABLE app.rsvp_events_2026 PARTITION OF app.rsvp_events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE app.rsvp_events_2027 PARTITION OF app.rsvp_events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE public.photos (photo_id serial PRIMARY KEY, guest_id bigint REFERENCES app.guests, url text NOT NULL);
CREATE TABLE public.a (a_id int PRIMARY KEY, b_id int NOT NULL);
CREATE TABLE public.b (b_id int PRIMARY KEY, a_id int NOT NULL REFERENCES public.a);
ALTER TABLE public.a ADD CONSTRAINT a_b_fkey FOREIGN KEY (b_id) REFERENCES public.b;
CREATE TABLE public.suppliers (supplier_id int PRIMARY KEY, name text);
CREATE TABLE public.bookings (booking_id serial PRIMARY KEY, vendor_id int NOT NULL REFERENCES public.suppliers,
  guest_id bigint NOT NULL REFERENCES app.guests);
CREATE TABLE public.settings (key text PRIMARY KEY, value text);

INSERT INTO app."Weddings" ("Ceremony Date", title) VALUES ('2026-06-01', 'one'), ('2026-09-12', 'two');
INSERT INTO app.guests (wedding_id, name) VALUES (1, 'ann'), (1, 'bob'), (2, 'cy');
INSERT INTO app.rsvp_answers (guest_id, answer) VALUES (1, 'yes'), (3, 'no');
INSERT INTO app.rsvp_events VALUES (1, 1, '2026-03-01'), (2, 3, '2027-02-01');
INSERT INTO public.photos (guest_id, url) VALUES (1, 'a.jpg'), (NULL, 'hero.jpg');
INSERT INTO public.settings VALUES ('theme', 'light');
`;

/** What `wedvault tenancy` prints for it, with the ceremony date at `app."Weddings"."Ceremony Date"`. */
export const TENANCY_LINES = [
  'app.answer_notes: wedding via answer_notes_answer_id_fkey → rsvp_answers_guest_id_fkey → app.guests.wedding_id',
  'app.guests: wedding (wedding_id)',
  'app.rsvp_answers: wedding via rsvp_answers_guest_id_fkey → app.guests.wedding_id',
  'app.rsvp_events: wedding via rsvp_events_guest_id_fkey → app.guests.wedding_id',
  'app.rsvp_events_2026: wedding via rsvp_events_guest_id_fkey → app.guests.wedding_id',
  'app.rsvp_events_2027: wedding via rsvp_events_guest_id_fkey → app.guests.wedding_id',
  'app."Seating": wedding via seating_table_fkey → app.tables.wedding_id',
  'app.tables: wedding (wedding_id)',
  'app."Weddings": wedding (id)',
  'public.a: platform',
  'public.b: platform',
  'public.bookings: wedding via bookings_guest_id_fkey → app.guests.wedding_id',
  'public.photos: mixed (wedding where set) via photos_guest_id_fkey → app.guests.wedding_id',
  'public.settings: platform',
  'public.suppliers: supplier (supplier_id)',
];

export const createTenancySchema = (url: string) => query(url, TENANCY_SCHEMA);
