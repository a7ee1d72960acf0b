// The MariaDBRole controller's wiring: the role controller (../role/) for MariaDBRoles.
import type { Controller } from '../../lib/runtime/index.ts';
import { setupRoleController } from '../role/setup.ts';
import type { SetupContext } from '../shared/setup.ts';

export function setupMariaDBRoleController(setup: SetupContext): Controller {
  return setupRoleController('MariaDBRole', setup);
}
