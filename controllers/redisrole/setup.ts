// The RedisRole controller's wiring: the role controller (../role/) for RedisRoles.
import type { Controller } from '../../lib/runtime/index.ts';
import { setupRoleController } from '../role/setup.ts';
import type { SetupContext } from '../shared/setup.ts';

export function setupRedisRoleController(setup: SetupContext): Controller {
  return setupRoleController('RedisRole', setup);
}
