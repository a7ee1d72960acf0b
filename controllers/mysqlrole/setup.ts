// The MySQLRole controller's wiring: the role controller (../role/) for MySQLRoles.
import type { Controller } from '../../lib/runtime/index.ts';
import { setupRoleController } from '../role/setup.ts';
import type { SetupContext } from '../shared/setup.ts';

export function setupMySQLRoleController(setup: SetupContext): Controller {
  return setupRoleController('MySQLRole', setup);
}
