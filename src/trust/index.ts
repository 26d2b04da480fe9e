export { decideTrust, keepSignatures, judge, decide, type TrustDecision, type TrustFields } from './gate.ts';
export { checkSignatures, replicateSignatures, type TrustResult, type Verdict, type SignatureSource, type SignatureStore, type SignatureReplica } from './check.ts';
export { signatureTag, parseSignatureManifest, isSignatureArtifact, COSIGN_SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE } from './cosign.ts';
export { loadKeys, policyFor, policyFingerprint, repositoryMatches, verifyPayload, sameRepository, keyId, type EffectivePolicy, type TrustKey } from './verify.ts';
export { storedSignatures } from './stored.ts';
export { TrustErrorCode } from './errors.ts';
