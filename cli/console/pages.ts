/**
 * The console's pages, rendered on the server: no client framework, no inline script or style (the
 * Content-Security-Policy allows only this package's /static files), every uploader or model string
 * escaped by html``. The few lines of JavaScript (static/console.js) only add keyboard shortcuts and
 * click-to-reveal; every action is a plain form POST.
 */
import { html, raw, type Html } from './html.ts';
import { fileName, formatAge, isFlagged, approveNeedsReason, type Item, type Queue } from './queue.ts';
import type { PendingKind } from '../human-review.ts';
import { percent, type QualityData } from '../quality.ts';
import type { Agreement, AgreementRow } from '../../functions/lib/quality.ts';
import type { Lease } from './leases.ts';
import type { Viewable } from './images.ts';
import type { Dashboard } from './dashboard.ts';
import type { ReviewerIdentity } from './identity.ts';
import { DECISION_STATUSES, type DecisionRecord } from '../../functions/lib/types.ts';
import { usd } from '../commands/cost.ts';

export interface PageContext {
  identity: ReviewerIdentity;
  /** Which stack, in words. */
  target: string;
  /** A message from the previous action (role=status). */
  flash?: string;
  now: Date;
}

export type Notice = { kind: 'error' | 'info'; text: string };

export function layout(title: string, ctx: PageContext, body: Html, current?: 'queue' | 'dashboard' | 'quality'): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Moderation console</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">Moderation console</a>
  <nav aria-label="Console">
    <a href="/"${current === 'queue' ? raw(' aria-current="page"') : ''}>Review queue</a>
    <a href="/dashboard"${current === 'dashboard' ? raw(' aria-current="page"') : ''}>Dashboard</a>
    <a href="/quality"${current === 'quality' ? raw(' aria-current="page"') : ''}>Quality</a>
  </nav>
  <p class="who">Reviewing as <strong>${ctx.identity.reviewer}</strong> <span class="muted">(${ctx.identity.source}) · ${ctx.target}</span></p>
</header>
<main>
${ctx.flash ? html`<p class="notice info" role="status">${ctx.flash}</p>` : ''}
${body}
</main>
</body>
</html>
`.toString();
}

function when(iso: string | Date): string {
  const date = typeof iso === 'string' ? new Date(iso) : iso;
  return Number.isNaN(date.getTime()) ? String(iso) : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function pct(confidence: number): string {
  return `${confidence.toFixed(1)}%`;
}

function topLabel(record: DecisionRecord): string {
  return record.rule ? `${record.rule.label} ${pct(record.rule.confidence)}` : '—';
}

// ---------------------------------------------------------------------------------------------------
// The queue

/** The kinds of work, as the queue names them: one item, several items. */
const KIND_NAMES: Record<PendingKind, { badge: string; one: string; many: string; filter: string }> = {
  review: { badge: 'held for review', one: 'image is waiting for review', many: 'images are waiting for review', filter: 'Held for review' },
  appeal: { badge: 'appeal', one: 'appeal is waiting for a decision', many: 'appeals are waiting for a decision', filter: 'Appeals' },
  sample: { badge: 'blind sample', one: 'blind quality sample is waiting for an answer', many: 'blind quality samples are waiting for an answer', filter: 'Blind samples' },
};

export function queuePage(ctx: PageContext, queue: Queue): string {
  const count = queue.items.length;
  const noun = queue.kind ? KIND_NAMES[queue.kind] : { one: 'image is waiting for review', many: 'images are waiting for review' };
  const summary =
    count === 0
      ? html`<p class="summary" id="queue-summary">${queue.kind ? `No ${KIND_NAMES[queue.kind].filter.toLowerCase()} waiting.` : 'Nothing is waiting for review.'}</p>`
      : html`<p class="summary" id="queue-summary"><strong>${queue.capped ? `more than ${count}` : count}</strong> ${count === 1 ? noun.one : noun.many}; the oldest has waited <strong>${formatAge(queue.oldestWaitingMs)}</strong>.</p>`;
  const total = queue.counts.review + queue.counts.appeal + queue.counts.sample;
  const filters = html`<nav class="filters" aria-label="Kinds of work">
  <a href="/"${queue.kind ? '' : raw(' aria-current="page"')}>All (${total})</a>
  ${(['review', 'appeal', 'sample'] as const).map((kind) => html`<a href="/?kind=${kind}"${queue.kind === kind ? raw(' aria-current="page"') : ''}>${KIND_NAMES[kind].filter} (${queue.counts[kind]})</a>`)}
</nav>`;
  const rows = queue.items.map(
    ({ kind, record, waitingMs, takenBy }) => html`<tr class="kind-${kind}${takenBy ? ' taken' : ''}">
  <td><a href="/items/${record.jobId}">${fileName(record.key)}</a><div class="muted small">${record.key}</div>${kind === 'appeal' ? html`<div class="appeal-message small">Appeal: “${record.reason ?? ''}”</div>` : ''}</td>
  <td><span class="badge kind-${kind}">${KIND_NAMES[kind].badge}</span></td>
  <td>${record.uploader ?? '—'}</td>
  <td>${kind === 'sample' ? html`<span class="muted">hidden (blind)</span>` : topLabel(record)}</td>
  <td>${formatAge(waitingMs)}</td>
  <td>${takenBy ? html`<span class="badge taken">taken by ${takenBy.reviewer} until ${when(takenBy.expiresAt).slice(11)}</span>` : html`<span class="badge free">free</span>`}</td>
</tr>`,
  );
  const body = html`<h1>Review queue</h1>
${filters}
${summary}
${count ? html`<p><a class="button" href="/next${queue.kind ? `?kind=${queue.kind}` : ''}">Review the oldest free item</a></p>
<table class="queue">
<caption class="visually-hidden">${queue.kind ? KIND_NAMES[queue.kind].filter : 'Images held for review, appeals and blind samples'}, oldest first</caption>
<thead><tr><th scope="col">File</th><th scope="col">Kind</th><th scope="col">Uploader</th><th scope="col">Flagged label</th><th scope="col">Waiting</th><th scope="col">Open</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>` : ''}`;
  return layout('Review queue', ctx, body, 'queue');
}

// ---------------------------------------------------------------------------------------------------
// One item

export interface ItemView {
  jobId: string;
  item: Item;
  image: Viewable;
  /** Another session has it open. */
  takenBy?: Lease;
  notice?: Notice;
  /** What the reviewer typed (kept when the page is shown again after an error). */
  reason?: string;
  /** The appeal message typed (kept likewise). */
  message?: string;
}

export function itemPage(ctx: PageContext, view: ItemView): string {
  const { automated, history, pending } = view.item;
  const blind = pending?.kind === 'sample';
  const openAppeal = pending?.kind === 'appeal' ? pending.record : undefined;
  // A blind item is always blurred: whether a label was flagged would give the verdict away.
  const blurred = blind || isFlagged(automated);
  const name = fileName(automated.key);
  const since = pending?.record ?? automated;
  const waiting = formatAge(Math.max(0, ctx.now.getTime() - Date.parse(since.decidedAt)));

  const image = view.image.ok
    ? html`${blurred ? html`<p class="reveal"><input type="checkbox" id="reveal"> <label for="reveal">Reveal image</label> <span class="muted small">(${blind ? 'blurred: every blind check starts blurred' : 'blurred: a label reached a threshold'}; click the image or press v)</span></p>` : ''}
<figure class="media${blurred ? ' blurred' : ''}">
  <img id="subject" src="/items/${view.jobId}/image" alt="${`The uploaded image ${name}`}">
  ${view.image.where === 'quarantine' && !blind ? html`<figcaption class="muted small">Shown from its copy in the quarantine bucket.</figcaption>` : ''}
</figure>`
    : html`<div class="placeholder" role="img" aria-label="Image unavailable"><p><strong>The image cannot be shown.</strong></p><p class="placeholder-reason">${blind ? blindReason(view.image.reason) : view.image.reason}</p></div>`;

  const header = html`<p class="crumbs"><a href="/">← Review queue</a></p>
<h1>${name}</h1>
${
  blind
    ? html`<p class="muted">s3://${automated.bucket}/${automated.key}${automated.versionId ? html` · version ${automated.versionId}` : ''} · uploader ${automated.uploader ?? '—'} · in the queue ${waiting} · job ${automated.jobId}</p>`
    : html`<p class="muted">s3://${automated.bucket}/${automated.key}${automated.versionId ? html` · version ${automated.versionId}` : ''} · uploader ${automated.uploader ?? '—'} · ${automated.status === 'REVIEW' ? 'held' : 'decided'} ${when(automated.decidedAt)} (${formatAge(Math.max(0, ctx.now.getTime() - Date.parse(automated.decidedAt)))} ago) · job ${automated.jobId}</p>`
}
${view.notice ? html`<p class="notice ${view.notice.kind}" role="${view.notice.kind === 'error' ? 'alert' : 'status'}">${view.notice.text}</p>` : ''}
${view.takenBy && pending ? html`<p class="notice warn" role="status">Taken: <strong>${view.takenBy.reviewer}</strong> opened this image in another session at ${when(view.takenBy.takenAt)} (until ${when(view.takenBy.expiresAt)}). If you decide it anyway, only the first decision is recorded.</p>` : ''}`;

  if (blind) {
    // Nothing of the automated verdict: no status, labels, rule, LLM answer, reason or history.
    const body = html`${header}
<div class="item">
<section class="viewer" aria-label="Image">
${image}
</section>
<section class="details" aria-labelledby="blind-heading">
<h2 id="blind-heading">Blind quality check</h2>
<p>This image was picked at random from the pipeline's decisions to measure their quality. What the pipeline decided is hidden, so that your answer is your own: would you approve or reject it?</p>
<p class="muted small">Your answer is recorded for the quality report (Quality; <code>moderation quality</code>). It does not change the image or what was decided about it.</p>
<h2>Your answer</h2>
${decisionForm(view.jobId, { mode: 'blind', reason: view.reason })}
</section>
</div>`;
    return layout(`${name} (blind check)`, ctx, body, 'queue');
  }

  const rule = automated.rule
    ? html`<dl class="facts">
  <dt>Status</dt><dd><span class="status s-${automated.status}">${automated.status}</span></dd>
  <dt>Rule</dt><dd>${automated.rule.category === '*' ? 'the default rule' : html`the rule for <strong>${automated.rule.category}</strong>`}: ${automated.rule.label} ${pct(automated.rule.confidence)} ≥ ${automated.rule.action} threshold ${automated.rule.threshold ?? ''}</dd>
  <dt>Decided by</dt><dd>${automated.decidedBy}${automated.policyVersion ? html` · policy ${automated.policyVersion}` : ''}${automated.modelVersion ? html` · model ${automated.modelVersion}` : ''}</dd>
</dl>`
    : html`<dl class="facts"><dt>Status</dt><dd><span class="status s-${automated.status}">${automated.status}</span></dd><dt>Decided by</dt><dd>${automated.decidedBy}${automated.policyVersion ? html` · policy ${automated.policyVersion}` : ''}</dd></dl>`;

  const labels = automated.labels.length
    ? html`<table class="labels">
<caption>Labels</caption>
<thead><tr><th scope="col">Label</th><th scope="col">Level</th><th scope="col">Confidence</th></tr></thead>
<tbody>${automated.labels.map(
        (label) => html`<tr${automated.rule?.label === label.name ? raw(' class="deciding"') : ''}><td>${label.parentName ? html`<span class="muted">${label.parentName} › </span>` : ''}${label.name}</td><td>L${label.level}</td><td class="num">${pct(label.confidence)}</td></tr>`,
      )}</tbody>
</table>`
    : html`<p class="muted">No moderation label was returned.</p>`;

  const llm = automated.llm
    ? html`<section class="llm" aria-labelledby="llm-heading"><h3 id="llm-heading">LLM review</h3>
<dl class="facts"><dt>Model</dt><dd>${automated.llm.modelId}</dd><dt>Answer</dt><dd><strong>${automated.llm.decision}</strong>${automated.llm.categories.length ? html` (${automated.llm.categories.join(', ')})` : ''}</dd><dt>Reason</dt><dd>${automated.llm.reason}</dd></dl></section>`
    : '';

  const appealSection = openAppeal ? appealNotice(openAppeal, view.item.latest) : '';
  const decision = decisionSection(view, openAppeal);

  const body = html`${header}
<div class="item">
<section class="viewer" aria-label="Image">
${image}
</section>
<section class="details" aria-labelledby="why">
${appealSection}
<h2 id="why">${automated.status === 'REVIEW' ? 'Why it was held' : 'The automated decision'}</h2>
<p>${automated.reason ?? '—'}</p>
${rule}
${labels}
${llm}
<h2>Decision</h2>
${decision}
</section>
</div>
<section aria-labelledby="history-heading">
<h2 id="history-heading">History of this image</h2>
<table class="history">
<thead><tr><th scope="col">When</th><th scope="col">Status</th><th scope="col">Decided by</th><th scope="col">Record</th><th scope="col">Reason</th><th scope="col">Job</th></tr></thead>
<tbody>${history.map(
    (record) => html`<tr${record.jobId === view.jobId ? raw(' class="this-job"') : ''}><td>${when(record.decidedAt)}</td><td><span class="status s-${record.status}">${record.status}</span></td><td>${record.decidedBy}</td><td>${record.kind}${record.appealOf ? ' (appeal outcome)' : ''}</td><td>${record.reason ?? record.error?.Error ?? ''}</td><td class="mono">${record.jobId.slice(0, 12)}${record.jobId === view.jobId ? ' (this one)' : ''}</td></tr>`,
  )}</tbody>
</table>
</section>`;
  return layout(name, ctx, body, 'queue');
}

/** A placeholder's reason, without where the object is (in quarantine would give a blind verdict away). */
function blindReason(reason: string): string {
  return /quarantine/i.test(reason) ? 'The object cannot be read.' : reason;
}

function appealNotice(appeal: DecisionRecord, contested: DecisionRecord): Html {
  return html`<section class="appeal" aria-labelledby="appeal-heading">
<h2 id="appeal-heading">Appeal</h2>
<p>Filed ${when(appeal.decidedAt)} by <strong>${appeal.decidedBy}</strong>, contesting the rejection by ${contested.decidedBy} (${when(contested.decidedAt)}):</p>
<blockquote class="appeal-message">${appeal.reason ?? ''}</blockquote>
</section>`;
}

/** The Decision section: the form for work in the queue, else what was decided (and, for a rejection, the appeal form). */
function decisionSection(view: ItemView, openAppeal: DecisionRecord | undefined): Html {
  const { item } = view;
  if (item.pending?.kind === 'review') return decisionForm(view.jobId, { mode: 'review', approveNeedsReason: approveNeedsReason(item.automated), reason: view.reason });
  if (openAppeal) return decisionForm(view.jobId, { mode: 'appeal', reason: view.reason });
  const parts: Html[] = [];
  if (item.human) {
    parts.push(
      html`<p class="notice info decided" role="status">Decided <strong>${item.human.status}</strong> by <strong>${item.human.decidedBy}</strong> at ${when(item.human.decidedAt)}${item.human.appealOf ? (item.human.status === 'APPROVED' ? ' (appeal granted)' : ' (appeal denied)') : ''}: “${item.human.reason ?? ''}”</p>`,
    );
  } else if (item.blind) {
    const agree = item.blind.status === item.automated.status;
    parts.push(
      html`<p class="notice info decided" role="status">Blind quality answer <strong>${item.blind.status}</strong> by <strong>${item.blind.decidedBy}</strong> at ${when(item.blind.decidedAt)}; the pipeline decided ${item.automated.status}: ${agree ? 'they agree' : 'they disagree'}.</p>`,
    );
  } else {
    parts.push(html`<p class="notice info">This image was decided ${item.automated.status} by ${item.automated.decidedBy}; only images held for review, appealed or sampled take a decision here.</p>`);
  }
  if (item.latest.status === 'REJECTED') parts.push(appealForm(view.jobId, view.message));
  else if (item.human || item.blind) parts.push(html`<p><a class="button" href="/next">Next item</a></p>`);
  return html`${parts}`;
}

type FormMode = { mode: 'review'; approveNeedsReason: boolean; reason?: string } | { mode: 'appeal'; reason?: string } | { mode: 'blind'; reason?: string };

function decisionForm(jobId: string, form: FormMode): Html {
  const reason = form.reason ?? '';
  // Approve may go without a reason only where it overrides nothing: a review without a flag, or a blind answer.
  const approveFree = (form.mode === 'review' && !form.approveNeedsReason) || form.mode === 'blind';
  const help =
    form.mode === 'blind'
      ? 'Optional: what you saw. Recorded with your answer.'
      : form.mode === 'appeal'
        ? 'Required: the uploader is told, and it is recorded in the history. Approve grants the appeal: the image is restored from quarantine and tagged APPROVED. Reject denies it: it stays in quarantine.'
        : `Recorded in the history. Required to reject${form.approveNeedsReason ? ', and to approve: approving overrides what the automation flagged' : '; optional to approve'}.`;
  return html`<form id="decision" class="decision" method="post" action="/items/${jobId}/decision">
<label for="reason">Reason</label>
<textarea id="reason" name="reason" rows="3" maxlength="1000"${form.mode === 'blind' ? '' : raw(' required')} aria-describedby="reason-help">${reason}</textarea>
<p id="reason-help" class="muted small">${help}</p>
<div class="buttons">
<button id="approve" type="submit" name="decision" value="approve" aria-keyshortcuts="a"${approveFree ? raw(' formnovalidate') : ''}>Approve</button>
<button id="reject" type="submit" name="decision" value="reject" aria-keyshortcuts="r" class="danger"${form.mode === 'blind' ? raw(' formnovalidate') : ''}>Reject</button>
</div>
<p class="muted small">Keys: <kbd>a</kbd> approve · <kbd>r</kbd> reject · <kbd>v</kbd> reveal the image (outside the text box).</p>
</form>`;
}

function appealForm(jobId: string, message = ''): Html {
  return html`<form id="appeal-form" class="decision appeal-form" method="post" action="/items/${jobId}/appeal">
<h3>Appeal this rejection</h3>
<p class="muted small">When the uploader contests the rejection, file their appeal: the image goes back to the review queue with their message, and stays in quarantine until a reviewer decides. Approving the appeal restores it.</p>
<label for="message">Message</label>
<textarea id="message" name="message" rows="3" maxlength="1000" required aria-describedby="message-help">${message}</textarea>
<p id="message-help" class="muted small">The uploader's words: why the image should not be rejected.</p>
<div class="buttons"><button id="appeal" type="submit">Appeal</button></div>
</form>`;
}

// ---------------------------------------------------------------------------------------------------
// The dashboard

export function dashboardPage(ctx: PageContext, data: Dashboard): string {
  const cost = 'error' in data.cost ? undefined : data.cost;
  const dlqDepth = 'error' in data.dlq ? undefined : data.dlq.visible + data.dlq.inFlight + data.dlq.delayed;
  const body = html`<h1>Dashboard</h1>
<div class="cards">
  <section class="card" aria-labelledby="c-backlog"><h2 id="c-backlog">Review backlog</h2><p class="big">${data.backlog.capped ? `${data.backlog.count}+` : data.backlog.count}</p><p class="muted">${data.backlog.count ? `oldest waiting ${formatAge(data.backlog.oldestWaitingMs)}` : 'nothing waiting'}</p></section>
  <section class="card" aria-labelledby="c-dlq"><h2 id="c-dlq">Dead-letter queue</h2><p class="big">${dlqDepth ?? '?'}</p><p class="muted">${'error' in data.dlq ? data.dlq.error : dlqDepth ? 'messages: see moderation dlq list' : 'empty'}</p></section>
  <section class="card" aria-labelledby="c-cost"><h2 id="c-cost">Estimated cost this month</h2>${
    cost
      ? html`<p class="big">${usd(cost.toDate.monthlyUsd)}</p><p class="muted">${cost.images.toLocaleString('en-US')} images so far; at this rate ${usd(cost.projected.monthlyUsd)} for the month (${cost.projectedImages.toLocaleString('en-US')} images)</p>`
      : html`<p class="muted">${'error' in data.cost ? data.cost.error : ''}</p>`
  }</section>
</div>
<section aria-labelledby="per-day"><h2 id="per-day">Decisions per day (last ${data.days.length} days, UTC)</h2>
${barChart(data)}
${legend()}
</section>
<section aria-labelledby="top-categories"><h2 id="top-categories">Top flagged categories</h2>
${data.categories.length
    ? html`<table class="categories"><thead><tr><th scope="col">Category</th><th scope="col">Rejected or held</th></tr></thead><tbody>${data.categories.map((c) => html`<tr><td>${c.category}</td><td class="num">${c.count}</td></tr>`)}</tbody></table>`
    : html`<p class="muted">No image was rejected or held for a label in the window.</p>`}
</section>
<p class="muted small">${data.recordsRead.toLocaleString('en-US')} records read${data.sampled ? ' (the newest only: the window holds more; older days are undercounted)' : ''}. ${
    cost
      ? `Cost: the estimate of \`moderation cost\` for this month's volume with the observed rates (${(cost.borderlineRate * 100).toFixed(1)}% borderline, ${(cost.rejectRate * 100).toFixed(1)}% rejected), Express workflow, contextual review ${cost.reviewModelId ? `on (${cost.reviewModelId})` : 'off'}; list prices as of ${cost.toDate.pricesAsOf}.`
      : ''
  } Read at ${when(data.now)}.</p>`;
  return layout('Dashboard', ctx, body, 'dashboard');
}

const CHART = { width: 760, height: 240, left: 40, bottom: 28, top: 12 };

function barChart(data: Dashboard): Html {
  const max = Math.max(1, ...data.days.map((d) => d.total));
  const plotHeight = CHART.height - CHART.bottom - CHART.top;
  const slot = (CHART.width - CHART.left) / Math.max(1, data.days.length);
  const barWidth = Math.max(4, slot * 0.7);
  const ticks = [0, Math.round(max / 2), max].filter((v, i, all) => all.indexOf(v) === i);
  const bars = data.days.map((day, i) => {
    const x = CHART.left + i * slot + (slot - barWidth) / 2;
    let y = CHART.top + plotHeight;
    const rects = DECISION_STATUSES.filter((s) => day.counts[s] > 0).map((status) => {
      const h = (day.counts[status] / max) * plotHeight;
      y -= h;
      return html`<rect class="s-${status}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${h.toFixed(1)}"><title>${day.day}: ${day.counts[status]} ${status}</title></rect>`;
    });
    const label = i % Math.ceil(data.days.length / 7) === 0 || i === data.days.length - 1 ? html`<text class="axis" x="${(x + barWidth / 2).toFixed(1)}" y="${CHART.height - 8}" text-anchor="middle">${day.day.slice(5)}</text>` : '';
    return html`<g>${rects}${label}</g>`;
  });
  const summary = data.days.map((d) => `${d.day}: ${d.total}`).join(', ');
  return html`<svg class="chart" viewBox="0 0 ${CHART.width} ${CHART.height}" role="img" aria-label="${`Decisions per day by status. ${summary}`}" xmlns="http://www.w3.org/2000/svg">
${ticks.map((v) => {
    const y = CHART.top + plotHeight - (v / max) * plotHeight;
    return html`<line class="grid" x1="${CHART.left}" x2="${CHART.width}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"></line><text class="axis" x="${CHART.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${v}</text>`;
  })}
${bars}
</svg>`;
}

function legend(): Html {
  return html`<ul class="legend">${DECISION_STATUSES.map((s) => html`<li><svg width="12" height="12" aria-hidden="true"><rect class="s-${s}" width="12" height="12"></rect></svg> ${s}</li>`)}</ul>`;
}

// ---------------------------------------------------------------------------------------------------
// Measured quality

/** The windows the quality page offers, in days. */
export const QUALITY_WINDOWS = [7, 30, 90, 365] as const;

export function qualityPage(ctx: PageContext, data: QualityData, days: number): string {
  const blind = data.observations.filter((o) => o.source === 'blind').length;
  const appealed = data.observations.length - blind;
  const windows = html`<nav class="filters" aria-label="Window">${QUALITY_WINDOWS.map(
    (d) => html`<a href="/quality?days=${d}"${d === days ? raw(' aria-current="page"') : ''}>Last ${d} days</a>`,
  )}</nav>`;
  const table = (id: string, caption: string, first: string, rows: AgreementRow[]) => html`<table class="quality" id="${id}">
<caption>${caption}</caption>
<thead><tr><th scope="col">${first}</th><th scope="col" class="num">Checked</th><th scope="col" class="num">Agreed</th><th scope="col" class="num">Agreement</th><th scope="col">95% CI</th><th scope="col" class="num">Blind</th><th scope="col" class="num">Blind agreement</th><th scope="col">Blind 95% CI</th><th scope="col" class="num">Overrides</th></tr></thead>
<tbody>${rows.map(
    (row) => html`<tr><th scope="row">${row.name === 'all' ? 'All' : row.name}</th><td class="num">${row.checked}</td><td class="num">${row.agreed}</td><td class="num">${percent(row.rate)}</td><td>${ci(row)}</td><td class="num">${row.blind.checked}</td><td class="num">${percent(row.blind.rate)}</td><td>${ci(row.blind)}</td><td class="num">${row.overrides}</td></tr>`,
  )}</tbody>
</table>`;
  const body = html`<h1>Measured quality</h1>
${windows}
<p class="summary" id="quality-summary">In the last ${days} days: <strong>${blind}</strong> blind ${blind === 1 ? 'answer' : 'answers'} and <strong>${appealed}</strong> appeal ${appealed === 1 ? 'outcome' : 'outcomes'} (${data.overall.overrides} ${data.overall.overrides === 1 ? 'override' : 'overrides'}); ${data.unanswered} of ${data.samples} quality ${data.samples === 1 ? 'sample' : 'samples'} still unanswered, ${data.openAppeals} ${data.openAppeals === 1 ? 'appeal' : 'appeals'} open.</p>
${
  data.observations.length
    ? html`${table('quality-status', 'Agreement by automated status', 'Status', [data.overall, ...data.byStatus])}
${table('quality-category', 'Agreement by category (of the label that decided)', 'Category', data.byCategory)}`
    : html`<p class="muted">Nothing to measure yet: answer the blind samples in the review queue.</p>`
}
<p class="muted small">How often people agree with the pipeline's APPROVED and REJECTED decisions. A blind answer is a reviewer's answer to a quality sample (a share of the automated decisions, sent to the queue without their verdict): a random sample, so the blind columns are the unbiased estimate. An appeal outcome is a reviewer's decision on an uploader's appeal; one that differs is an override. Appeals are not random (uploaders appeal what they think is wrong), so they pull the combined figure down. Decisions on images held for review are not counted: there was no verdict to agree with. 95% CI: the Wilson score interval. Samples of decisions made, and appeals filed, in the window; the same report: <code>moderation quality --since ${days}d</code>.</p>`;
  return layout('Quality', ctx, body, 'quality');
}

function ci(row: Agreement): string {
  return row.ci ? `${percent(row.ci.low)} – ${percent(row.ci.high)}` : '–';
}

// ---------------------------------------------------------------------------------------------------
// Errors

/** A page without the header (no session, nothing about the stack). */
export function barePage(title: string, message: Html): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>${title} · Moderation console</title></head>
<body><h1>${title}</h1>${message}</body></html>
`.toString();
}

export function unauthorizedPage(wrongToken: boolean): string {
  return barePage(
    'Token needed',
    html`<p>${wrongToken ? 'This token is not the console’s.' : 'This console needs the token from its URL.'} Open the address that <code>moderation console</code> printed (<code>http://127.0.0.1:PORT/?token=…</code>), or start it again for a new one.</p>`,
  );
}

export function errorPage(ctx: PageContext, title: string, message: string): string {
  return layout(title, ctx, html`<h1>${title}</h1><p class="notice error" role="alert">${message}</p><p><a href="/">Back to the review queue</a></p>`);
}
