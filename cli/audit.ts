/**
 * The decision history as auditors read it: queries go through the decision store
 * (functions/store/decision-query.ts, which knows the indexes); this module turns a CLI target into
 * that store's table, and records into table and CSV rows.
 */
import type { AuditPage, AuditQuery } from '../functions/store/decision-query.ts';
import type { DecisionRecord } from '../functions/lib/types.ts';
import { recordIdOf } from '../functions/store/table-schema.ts';
import { resolveCategoryName, topLevelCategory, ancestry } from '../functions/lib/taxonomy.ts';
import type { Target } from './target.ts';
import { UsageError, type Row } from './output.ts';
import { decisionStoreOf } from './stores.ts';

export { planQuery, type AuditOrder, type AuditPage, type AuditQuery, type QueryPlan } from '../functions/store/decision-query.ts';

/** What a query needs of a target: the table and the client. */
export type HistoryTarget = Pick<Target, 'dynamodb'> & { names: Pick<Target['names'], 'decisionTable' | 'statusShards'> };

/** One page of matching records in decidedAt order (newest first unless order is 'oldest'). */
export function queryDecisions(target: HistoryTarget, query: AuditQuery): Promise<AuditPage> {
  return decisionStoreOf(target).query(query);
}

/** Every matching record, page after page (for exports): memory stays at one page per partition. */
export function iterateDecisions(target: HistoryTarget, query: Omit<AuditQuery, 'limit'> & { max?: number }): AsyncGenerator<DecisionRecord> {
  return decisionStoreOf(target).iterate(query);
}

/**
 * The stored (top-level) categories a --category value stands for: a model-7 category at any level
 * or a model-6.1 name (e.g. 'Suggestive', which model 7 split across several top-level categories).
 * Records store the deciding label's top-level category, so a lower-level name matches its L1.
 */
export function resolveCategories(name: string): string[] {
  const canonical = resolveCategoryName(name);
  if (canonical.length === 0) {
    throw new UsageError(`--category: unknown moderation category "${name}" (a Rekognition model 7 or 6.1 name such as Explicit, Violence, Swimwear or Underwear)`);
  }
  const tops = new Set(canonical.map((c) => topLevelCategory(c) ?? ancestry(c)[0]!));
  return [...tops];
}

/** The columns of a decision in the table, CSV and export outputs. */
export const AUDIT_TABLE_COLUMNS = ['decided at', 'status', 'kind', 'key', 'uploader', 'decided by', 'category', 'label', 'reason'];
export const AUDIT_CSV_COLUMNS = [
  'decidedAt',
  'status',
  'bucket',
  'key',
  'versionId',
  'eTag',
  'uploader',
  'decidedBy',
  'category',
  'label',
  'confidence',
  'rule',
  'reason',
  'policyVersion',
  'modelVersion',
  'llmModel',
  'inputTokens',
  'outputTokens',
  'error',
  'estimatedCostUsd',
  'jobId',
  'recordKey',
  'supersedes',
  'executionId',
  'kind',
  'appealOf',
  'contests',
  'sampleOf',
  'qualitySample',
];

/** One record flattened for CSV (every auditor-relevant field, one column each). */
export function csvRow(record: DecisionRecord): Row {
  return {
    decidedAt: record.decidedAt,
    status: record.status,
    bucket: record.bucket,
    key: record.key,
    versionId: record.versionId,
    eTag: record.eTag,
    uploader: record.uploader,
    decidedBy: record.decidedBy,
    category: record.category,
    label: record.rule?.label,
    confidence: record.rule?.confidence,
    rule: record.rule ? `${record.rule.category}: ${record.rule.action}${record.rule.threshold !== undefined ? ` at ${record.rule.threshold}` : ''}` : undefined,
    reason: record.reason,
    policyVersion: record.policyVersion,
    modelVersion: record.modelVersion,
    llmModel: record.llm?.modelId,
    inputTokens: record.llm?.inputTokens,
    outputTokens: record.llm?.outputTokens,
    error: record.error ? record.error.Error : undefined,
    estimatedCostUsd: record.estimatedCostUsd,
    jobId: record.jobId,
    recordKey: recordIdOf(record),
    supersedes: record.supersedes,
    executionId: record.executionId,
    kind: record.kind,
    appealOf: record.appealOf,
    contests: record.contests,
    sampleOf: record.sampleOf,
    qualitySample: record.qualitySample ? 'true' : undefined,
  };
}

/** One record for the terminal table: the essentials, the reason shortened. */
export function tableRow(record: DecisionRecord): Row {
  const label = record.rule ? `${record.rule.label} ${record.rule.confidence.toFixed(1)}%` : undefined;
  return {
    'decided at': record.decidedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    status: record.status,
    // Which kind of record (automated, human, failure, appeal, sample, blind): an appeal and a
    // sample's queue entry carry status REVIEW without being a decision.
    kind: record.kind,
    key: record.key,
    uploader: record.uploader ?? '-',
    'decided by': record.decidedBy,
    category: record.category ?? '-',
    label: label ?? '-',
    reason: shorten(record.reason ?? '', 70),
  };
}

export function shorten(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
