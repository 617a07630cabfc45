/** Powertools logger and metrics shared by the handlers (structured JSON logs, EMF metrics). */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'moderation' });

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'UploadModeration',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'moderation',
});

export { MetricUnit } from '@aws-lambda-powertools/metrics';

/** Flushes the metrics added during this invocation (an invocation that failed early may have none). */
export function flushMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
