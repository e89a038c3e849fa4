/**
 * Migrations are listed here rather than discovered on disk, so they work the same from TypeScript sources,
 * compiled output and the Docker image. Add a file, then add it to this list; never edit a released one.
 */
import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial';
import * as m0002 from './0002_policies';
import * as m0003 from './0003_events_tasks';
import * as m0004 from './0004_exchange';
import * as m0005 from './0005_contact_class';
import * as m0006 from './0006_interleavings';
import * as m0007 from './0007_crm_restore_guard';
import * as m0008 from './0008_event_exception_inherits';
import * as m0009 from './0009_event_invitations';
import * as m0010 from './0010_retention';
import * as m0011 from './0011_failure_handling';
import * as m0012 from './0012_sync_lag_index';
import * as m0013 from './0013_crm_email';
import * as m0014 from './0014_email_filing';
import * as m0015 from './0015_email_sync';

const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_policies': m0002,
  '0003_events_tasks': m0003,
  '0004_exchange': m0004,
  '0005_contact_class': m0005,
  '0006_interleavings': m0006,
  '0007_crm_restore_guard': m0007,
  '0008_event_exception_inherits': m0008,
  '0009_event_invitations': m0009,
  '0010_retention': m0010,
  '0011_failure_handling': m0011,
  '0012_sync_lag_index': m0012,
  '0013_crm_email': m0013,
  '0014_email_filing': m0014,
  '0015_email_sync': m0015,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
