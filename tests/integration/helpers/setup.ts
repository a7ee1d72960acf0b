// Cluster and Vault set-up shared by the controller tests: CRDs installed, the operator's Vault policy and
// auth role, and the token role its issuer tokens come from. The code lives in scripts/stack/leasehold-setup.ts,
// which `npm run demo` uses too.
export {
  ISSUER_POLICY, ISSUER_TOKEN_ROLE, OPERATOR_POLICY, configureVaultForOperator, guideManifests, guideRole, installCrds, installCrdsAsync, kubectl, kubectlAsync, sampleDocs,
  type GuideOptions, type KubectlRun, type VaultSetup,
} from '../../../scripts/stack/leasehold-setup.ts';
