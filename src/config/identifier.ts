/**
 * Parses the names the config gives to tables and columns, `[schema.]table[.column]`, the way
 * PostgreSQL reads them: an unquoted part is folded to lower case, a quoted one (`"Ceremony Date"`,
 * `"a""b"` for a quote inside) is kept as written. The one parser for every such setting.
 */

const UNQUOTED = /^[A-Za-z_][A-Za-z0-9_$]*/;

/** The parts of a dotted name, or a message saying what is wrong with it. */
export function splitQualifiedName(value: string): string[] | { error: string } {
  const parts: string[] = [];
  let at = 0;
  for (;;) {
    if (value[at] === '"') {
      let part = '';
      let i = at + 1;
      for (;;) {
        const q = value.indexOf('"', i);
        if (q < 0) return { error: `unterminated quoted name at ${at + 1}` };
        part += value.slice(i, q);
        if (value[q + 1] !== '"') {
          at = q + 1;
          break;
        }
        part += '"';
        i = q + 2;
      }
      if (!part) return { error: 'empty quoted name' };
      parts.push(part);
    } else {
      const m = UNQUOTED.exec(value.slice(at));
      if (!m) return { error: `expected a name at ${at + 1}` };
      // PostgreSQL folds unquoted names to lower case
      parts.push(m[0].toLowerCase());
      at += m[0].length;
    }
    if (at === value.length) return parts;
    if (value[at] !== '.') return { error: `unexpected "${value[at]}" at ${at + 1}` };
    at += 1;
  }
}

/** A name as PostgreSQL prints it: quoted only where it must be. */
export function quoteName(part: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(part) ? part : `"${part.replaceAll('"', '""')}"`;
}
