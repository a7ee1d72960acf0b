// Direct Vault/OpenBao HTTP calls with the root token, for test set-up and assertions.
export { vaultRequest, type VaultAnswer } from '../../../scripts/stack/leasehold-setup.ts';
