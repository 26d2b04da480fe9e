export { CLOUDEVENT_TYPE_PREFIX, SIGNATURE_HEADER, TIMESTAMP_HEADER, toCloudEvent, signatureHeaders, verifySignature, type CloudEvent } from './cloudevent.ts';
export { WebhookDeliverer, backoffMs, readWebhookSecret, type WebhookStats } from './deliverer.ts';
