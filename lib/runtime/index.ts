// The controller runtime's public surface: what controllers import.
export * from './types.ts';
export * from './clock.ts';
export * from './logging.ts';
export * from './metrics.ts';
export * from './workqueue.ts';
export * from './kube.ts';
export * from './watch.ts';
export * from './controller.ts';
export * from './conditions.ts';
export * from './status.ts';
export * from './finalizers.ts';
export * from './events.ts';
export * from './owners.ts';
export * from './leader.ts';
export * from './health.ts';
export * from './manager.ts';
export * from './registration.ts';
