// The words status and Events are written in: condition types and what each means when True or False (its
// polarity), the reasons controllers write on conditions (ConditionReason) and on Events (EventReason), and the
// intervals the controllers look again at. Typed as string-literal unions, so a misspelt reason doesn't compile.
// KubeVault's own condition types and reasons are kept verbatim, so tools written against KubeVault read ours.

// ---- Condition types and their polarity -------------------------------------------------------------------------

export const ConditionType = {
  /** SecretEngine, PostgresRole: configured in Vault and usable. AppBinding: the address answers. */
  Ready: 'Ready',
  /** KubeVault's "ready" condition: kept in step with Ready, for tools written against KubeVault. */
  Available: 'Available',
  /** DatabaseAccessRequest: a person (or an auto-approval rule) approved it. Only ever True; permanent. */
  Approved: 'Approved',
  /** DatabaseAccessRequest: a person denied it. Only ever True; permanent; exclusive with Approved. */
  Denied: 'Denied',
  /** Something failed; reason and message say what. */
  Failed: 'Failed',
  /** DatabaseAccessRequest: the lease ran out, or the request waited for approval too long. */
  Expired: 'Expired',
  /** DatabaseAccessRequest: the lease was revoked on demand. False while a revocation (on demand, on deletion,
   * at expiry, after a rotation's grace period) that Vault has not done yet is retried: reason RevocationFailed,
   * VaultUnreachable, …, and the message says which lease and what Vault said. */
  Revoked: 'Revoked',
  /**
   * AppBinding, SecretEngine, PostgresRole: being deleted, and the operator's cleanup isn't done. True throughout;
   * the reason says whether it waits for dependents (LeasesOutstanding, InUse) or its cleanup failed (any other).
   */
  Terminating: 'Terminating',
  /**
   * A Vault AppBinding: whether leases issued through it are owned by the issuer token, and so outlive the
   * operator's login (True, IssuerToken), or by the login itself (False, IssuerTokenRoleUnavailable, …).
   */
  LeaseOwnership: 'LeaseOwnership',
  /**
   * DatabaseAccessRequest: True after a break-glass approval (the requester approved their own request in an
   * emergency) until someone else with "approve" on the role reviews it (status.review); then False, Reviewed.
   */
  ReviewRequired: 'ReviewRequired',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/**
 * The status that is bad news for each condition type: an Event about a condition in that status is a Warning,
 * any other a Normal one. `undefined`: never bad news (decisions, and the normal ends of a request's life:
 * Expired, and Revoked once True). Reasons in EXPECTED_REASONS are never bad news whatever carries them.
 */
export const AbnormalStatus: Record<ConditionType, 'True' | 'False' | undefined> = {
  Ready: 'False',
  Available: 'False',
  Failed: 'True',
  Terminating: 'True',
  /** Revoked False: a revocation Vault hasn't done, retried; the login may still work. */
  Revoked: 'False',
  LeaseOwnership: 'False',
  ReviewRequired: 'True',
  Approved: undefined,
  Denied: undefined,
  Expired: undefined,
};

/**
 * The condition each kind's Events are written from: one Event per transition of it, a Warning when it turns
 * bad. Ready for the kinds KubeVault calls "ready" (Available moves with it), Available for requests.
 */
export const SummaryCondition: Readonly<Record<string, ConditionType>> = {
  AppBinding: ConditionType.Ready,
  SecretEngine: ConditionType.Ready,
  PostgresRole: ConditionType.Ready,
  MySQLRole: ConditionType.Ready,
  MariaDBRole: ConditionType.Ready,
  RedisRole: ConditionType.Ready,
  DatabaseAccessRequest: ConditionType.Available,
  AccessNotifier: ConditionType.Ready,
  ClusterAccessNotifier: ConditionType.Ready,
};

// ---- Condition reasons ------------------------------------------------------------------------------------------

/** Condition reasons (CamelCase, as metav1.Condition requires): every reason the operator writes. */
export const Reason = {
  // Decisions. KubectlApprove and KubectlDeny are what `kubectl vault approve|deny` writes (KubeVault's plugin
  // wrote the same); a person may give any other. AutoApproved is the operator's own (approval.autoApprove).
  KubectlApprove: 'KubectlApprove',
  KubectlDeny: 'KubectlDeny',
  AutoApproved: 'AutoApproved',
  /** Approved by the operator once the role's approval.approvals distinct people approved (status.approvals). */
  RequiredApprovalsReached: 'RequiredApprovalsReached',
  /** Approved by the operator on the requester's own emergency approval (the role's approval.breakGlass). */
  BreakGlassApproved: 'BreakGlassApproved',
  /** An approval was added to status.approvals (audit action; one of several the role requires). */
  ApprovalRecorded: 'ApprovalRecorded',
  /** ReviewRequired False: someone other than the requester reviewed a break-glass approval. */
  Reviewed: 'Reviewed',
  // Progress and success.
  Provisioned: 'Provisioned',
  WaitingForApproval: 'WaitingForApproval',
  SuccessfullyIssuedCredential: 'SuccessfullyIssuedCredential',
  LeaseRenewed: 'LeaseRenewed',
  CredentialRotated: 'CredentialRotated',
  /** AppBinding Ready: Vault answered and the operator logged in; or PostgreSQL accepted the admin login. */
  Reachable: 'Reachable',
  /** LeaseOwnership True: leases are owned by the issuer token. */
  IssuerToken: 'IssuerToken',
  // Ends of a request's life.
  LeaseExpired: 'LeaseExpired',
  ApprovalTimedOut: 'ApprovalTimedOut',
  RevokedOnDemand: 'RevokedOnDemand',
  /** The role's approval.maxAccessDuration (or a break-glass approval's maxTTL) since the first issuance is over. */
  AccessDurationReached: 'AccessDurationReached',
  // Why a credential is replaced (status.rotation.reason; Available False while a broken one is replaced).
  RenewalTruncated: 'RenewalTruncated',
  RenewalRefused: 'RenewalRefused',
  LeaseRevoked: 'LeaseRevoked',
  NotRenewable: 'NotRenewable',
  RotateRequested: 'RotateRequested',
  SecretDeleted: 'SecretDeleted',
  SecretModified: 'SecretModified',
  // Failures KubeVault reports, same names.
  FailedToEnableSecretEngine: 'FailedToEnableSecretEngine',
  FailedToCreateSecretEngineConfig: 'FailedToCreateSecretEngineConfig',
  FailedToCreateDatabaseRole: 'FailedToCreateDatabaseRole',
  FailedToGetCredential: 'FailedToGetCredential',
  FailedToCreateSecret: 'FailedToCreateSecret',
  // Failures only a controller can detect (the schema can't see other objects).
  ReferenceNotFound: 'ReferenceNotFound',
  /** A reference into another namespace whose object doesn't admit the referring namespace (Annotations.allowedNamespaces). */
  ReferenceNotAllowed: 'ReferenceNotAllowed',
  NamespaceNotAllowed: 'NamespaceNotAllowed',
  ReasonRequired: 'ReasonRequired',
  SelfApprovalForbidden: 'SelfApprovalForbidden',
  /** Approved by a person's condition alone where the role requires more distinct approvals (approval.approvals). */
  NotEnoughApprovals: 'NotEnoughApprovals',
  /** A request's PostgresRole isn't Success yet. */
  RoleNotReady: 'RoleNotReady',
  /** A role's SecretEngine connects to another kind of database (a MySQLRole naming a SecretEngine with spec.redis, say). */
  EngineKindMismatch: 'EngineKindMismatch',
  /** A secretTemplate can't be rendered: nothing is issued. */
  InvalidSecretTemplate: 'InvalidSecretTemplate',
  /** An AppBinding without an address, or without the Secret a database AppBinding needs. */
  InvalidAppBinding: 'InvalidAppBinding',
  /** A database AppBinding's Secret lacks a username or password. */
  InvalidDatabaseSecret: 'InvalidDatabaseSecret',
  /** A Vault AppBinding's token Secret has no `token` key. */
  InvalidTokenSecret: 'InvalidTokenSecret',
  /** A Secret an AppBinding names doesn't exist. */
  SecretNotFound: 'SecretNotFound',
  /** Kubernetes auth with no ServiceAccount to log in as. */
  NoServiceAccount: 'NoServiceAccount',
  /** The operator holds no Vault login for an AppBinding and can't get one (its ServiceAccount or namespace is going). */
  VaultLoginUnavailable: 'VaultLoginUnavailable',
  /** LeaseOwnership False: no token role to create the issuer token from, or the policy doesn't allow it. */
  IssuerTokenRoleUnavailable: 'IssuerTokenRoleUnavailable',
  // What Vault answered (lib/vault/errors.ts VaultErrorKind, as report.ts explain() names it).
  /** No answer from Vault, or it is sealed. */
  VaultUnreachable: 'VaultUnreachable',
  VaultSealed: 'VaultSealed',
  VaultPermissionDenied: 'VaultPermissionDenied',
  VaultNotFound: 'VaultNotFound',
  VaultInvalid: 'VaultInvalid',
  VaultServer: 'VaultServer',
  /** Vault tried to revoke a lease and failed (PostgreSQL refused to drop a login that owns objects, say): the
   * login still works, the lease is still live; retried with backoff. */
  RevocationFailed: 'RevocationFailed',
  // What a database AppBinding's check found.
  Unreachable: 'Unreachable',
  AuthenticationFailed: 'AuthenticationFailed',
  DatabaseNotFound: 'DatabaseNotFound',
  DNSLookupFailed: 'DNSLookupFailed',
  TLSError: 'TLSError',
  // Deletion order (what live leases and the cleanup of Vault depend on).
  /** Terminating: requests still hold leases through the object; it waits for them to be revoked. */
  LeasesOutstanding: 'LeasesOutstanding',
  /** Terminating: SecretEngines or PostgresRoles still need the object to clean up Vault; it waits for them. */
  InUse: 'InUse',
  /** A request's role, SecretEngine or Vault AppBinding is being deleted: no new credential is issued through it. */
  ReferenceTerminating: 'ReferenceTerminating',
  // Notifiers (AccessNotifier, ClusterAccessNotifier).
  /** Its Secrets resolve and its last delivery (if any) succeeded. */
  Delivering: 'Delivering',
  /** Its last delivery failed: retried with backoff, in order; status.backlog says how many wait. */
  DeliveryFailing: 'DeliveryFailing',
  /** A write lost to a newer version of the object: retried at once on fresh data, never written to status. */
  Conflict: 'Conflict',
  /** A bug, or an answer nobody expected: the operator's log has the details. */
  InternalError: 'InternalError',
} as const;
export type ConditionReason = (typeof Reason)[keyof typeof Reason];

/** Terminating reasons that mean "waiting for dependents", not "the cleanup failed". */
export const WAITING_REASONS: readonly string[] = [Reason.LeasesOutstanding, Reason.InUse];

/** Reasons that are never bad news, whatever condition carries them: waiting for someone (a decision, dependents). */
export const EXPECTED_REASONS: readonly string[] = [Reason.WaitingForApproval, ...WAITING_REASONS];

/**
 * Conditions whose True is a normal end of a request's life (its lease ran out, it waited too long for a decision,
 * it was revoked on demand): the summary condition turning False alongside one is not bad news.
 */
export const NORMAL_ENDS: readonly string[] = [ConditionType.Expired, ConditionType.Revoked];

type ConditionLike = { type: string; status?: string; reason?: string };

/**
 * Whether condition `c` is bad news, by its type's polarity (AbnormalStatus): what its Event's type, Warning or
 * Normal, follows. `alongside`: the conditions set in the same transition (a normal end among them makes the
 * request's Available False a Normal Event). A missing status reads as True, as KubeVault's earliest conditions meant.
 */
export function isAbnormal(c: ConditionLike, alongside: readonly ConditionLike[] = []): boolean {
  if (c.reason && EXPECTED_REASONS.includes(c.reason)) return false;
  const abnormal = (AbnormalStatus as Record<string, 'True' | 'False' | undefined>)[c.type];
  if (abnormal === undefined || (c.status ?? 'True') !== abnormal) return false;
  return !alongside.some((o) => NORMAL_ENDS.includes(o.type) && (o.status ?? 'True') === 'True');
}

// ---- Event reasons ---------------------------------------------------------------------------------------------

/** Reasons of Events that tell of an act rather than a condition's transition. */
export const EventOnlyReason = {
  /** A person approved a request (the condition's reason is theirs to choose). */
  RequestApproved: 'RequestApproved',
  /** A person denied a request. */
  RequestDenied: 'RequestDenied',
  /** A lease issued before a restart and never recorded was found and revoked. */
  OrphanLeaseRevoked: 'OrphanLeaseRevoked',
  /** Renewing a lease failed; retried until it expires. */
  LeaseRenewalFailed: 'LeaseRenewalFailed',
  /** A lease (the current one on deletion, or one rotated out) was revoked. */
  LeaseRevoked: 'LeaseRevoked',
  /** The Vault AppBinding a lease was issued through is gone: the lease is left to expire. */
  LeaseNotRevoked: 'LeaseNotRevoked',
  /** Workloads in rolloutRestartTargets were restarted for a rotated credential. */
  RolloutRestartTriggered: 'RolloutRestartTriggered',
  /** A workload in rolloutRestartTargets couldn't be restarted. */
  RolloutRestartFailed: 'RolloutRestartFailed',
  /** A credential Secret was rendered again: its template or the database address changed. */
  SecretUpdated: 'SecretUpdated',
  /** A credential Secret's keys other than the credential were changed by hand, and rendered again. */
  SecretRepaired: 'SecretRepaired',
  /** A PostgresRole was deleted without its Vault role: the Vault AppBinding is gone. */
  VaultRoleNotDeleted: 'VaultRoleNotDeleted',
  /** A SecretEngine was deleted without cleaning up Vault: the Vault AppBinding is gone. */
  VaultCleanupSkipped: 'VaultCleanupSkipped',
  /** A SecretEngine's mount was disabled (every lease under it revoked). */
  MountDisabled: 'MountDisabled',
} as const;

/** Every Event reason: a condition's (Events from report() carry its reason) or one of EventOnlyReason. */
export type EventReason = ConditionReason | (typeof EventOnlyReason)[keyof typeof EventOnlyReason];

// ---- Intervals -------------------------------------------------------------------------------------------------

/**
 * When the controllers look again without being woken by a change. Failures are retried by the work queue's
 * backoff (a RetryableError); these are for time, and for what no watch covers.
 */
export const Interval = {
  /** An AppBinding whose target answers is checked again this often (ms). */
  appBindingHealthyRecheckMs: 60 * 60_000,
  /**
   * An AppBinding whose target doesn't answer is checked again this often (ms): Vault and PostgreSQL are outside
   * the cluster, so no watch says when they are back, and the check is what tells the objects that depend on them.
   */
  appBindingFailedRecheckMs: 30_000,
  /** An object being deleted that waits for dependents (whose changes wake it) looks again anyway this often (ms). */
  dependentsRecheckMs: 5 * 60_000,
} as const;
