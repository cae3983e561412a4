// The scheduling section: defaults filled in, and bad input refused at start-up with the field named.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();

function load(file: unknown) {
  const dir = tempDir('wv-sched-config-');
  writeFileSync(path.join(dir, 'c.json'), JSON.stringify(file));
  return loadConfig({
    WEDVAULT_DATA_DIR: path.join(dir, 'data'),
    WEDVAULT_FILES_DIR: path.join(dir, 'files'),
    WEDVAULT_MASTER_KEY: 'a'.repeat(64),
    WEDVAULT_CONFIG: path.join(dir, 'c.json'),
  });
}

function refusal(file: unknown): string {
  try {
    load(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('the config was accepted');
}

describe('scheduling config', () => {
  it('fills every tier from the defaults and keeps overrides', () => {
    const c = load({
      scheduling: { tiers: { week: { rpoMinutes: 30, filesEveryMinutes: 10 } } },
    });
    // the fields not given keep the tier's defaults
    expect(c.scheduling.tiers.week).toEqual({
      rpoMinutes: 30,
      filesEveryMinutes: 10,
      databaseEveryMinutes: 60,
      databaseContinuous: true,
    });
    expect(c.scheduling.tiers.later.filesEveryMinutes).toBe(1440);
    expect(c.scheduling.peakWeekdays).toEqual({ days: ['fri', 'sat', 'sun'], factor: 1.5 });
  });

  it('refuses an unknown tier, naming it', () => {
    expect(refusal({ scheduling: { tiers: { tomorrow: { rpoMinutes: 1 } } } })).toMatch(
      /scheduling\.tiers: .*tomorrow/,
    );
  });

  it('refuses an invalid cron pattern or time zone, naming the field', () => {
    expect(refusal({ scheduling: { schedules: { 'nightly-full': { pattern: '61 2 * * *' } } } })).toMatch(
      /scheduling\.schedules\.nightly-full\.pattern: invalid cron pattern/,
    );
    expect(
      refusal({
        scheduling: {
          offPeak: { database: { tz: 'Mars/Olympus', windows: [{ start: '01:00', end: '05:00' }] } },
        },
      }),
    ).toMatch(/scheduling\.offPeak\.database\.tz: unknown time zone/);
  });

  it('refuses overlapping windows of one source, also across midnight', () => {
    const windows = [
      { start: '22:00', end: '02:00', days: ['sat'] },
      { start: '01:00', end: '03:00', days: ['sun'] },
    ];
    expect(refusal({ scheduling: { offPeak: { database: { windows } } } })).toMatch(
      /scheduling\.offPeak\.database\.windows\.1: overlaps window 0/,
    );
    windows[1]!.days = ['mon'];
    expect(
      load({ scheduling: { offPeak: { database: { windows } } } }).scheduling.offPeak.database!.windows,
    ).toHaveLength(2);
  });

  it('refuses a region column outside the ceremony date table', () => {
    expect(refusal({ sources: { postgres: { weddingRegion: 'venues.region' } } })).toMatch(
      /sources\.postgres\.weddingRegion/,
    );
  });
});
