// The PostgresRole controller's wiring: the role controller (../role/) for PostgresRoles.
import type { Controller } from '../../lib/runtime/index.ts';
import { setupRoleController } from '../role/setup.ts';
import type { SetupContext } from '../shared/setup.ts';

export function setupPostgresRoleController(setup: SetupContext): Controller {
  return setupRoleController('PostgresRole', setup);
}
