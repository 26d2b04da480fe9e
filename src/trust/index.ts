export { decideTrust, keepSignatures, type TrustDecision, type TrustFields } from './gate.ts';
export { checkSignatures, replicateSignatures, type TrustResult, type Verdict } from './check.ts';
export { signatureTag, parseSignatureManifest, COSIGN_SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE } from './cosign.ts';
export { loadKeys, policyFor, verifyPayload, sameRepository, keyId, type EffectivePolicy, type TrustKey } from './verify.ts';
export { TrustErrorCode } from './errors.ts';
