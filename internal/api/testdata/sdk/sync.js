#!/usr/bin/env node
'use strict';
/*
 * sync.js — drives the REAL JupiterOne sync client
 * (@jupiterone/integration-sdk-runtime 17.4.0) against a j1ds server.
 *
 * Usage:
 *   J1DS_API_BASE_URL=http://127.0.0.1:PORT J1DS_ACCOUNT=acct J1DS_API_KEY=key \
 *     node sync.js scenario.json
 *
 * Environment:
 *   J1DS_API_BASE_URL  required, base URL without trailing path (paths such as
 *                      /persister/synchronization/jobs are appended by the SDK)
 *   J1DS_ACCOUNT       required, sent by the SDK as header `JupiterOne-Account`
 *   J1DS_API_KEY       required, sent by the SDK as `Authorization: Bearer <key>`
 *   LOG_LEVEL          optional, bunyan level of the SDK logger (default "error" here);
 *                      SDK logs always go to stderr.
 *
 * Scenario file (JSON):
 * {
 *   "compressUploads": false,          // optional; createApiClient({compressUploads}):
 *                                      // gzip bodies of POST .../entities and .../relationships
 *   "uploadBatchSizeInBytes": 5000000, // optional; passed to uploadGraphObjectData; a small
 *                                      // value makes the SDK split one batch into several requests
 *   "jobs": [
 *     {
 *       "source": "integration-managed" | "integration-external" | "api" | "system-internal",
 *       "scope": "my-scope",                 // optional (see "initiate")
 *       "integrationInstanceId": "…",        // optional
 *       "integrationJobId": "…",             // optional
 *       "syncMode": "DIFF" | "PATCH",        // optional; requires "initiate": "raw" (see below)
 *       "initiate": "sdk" | "raw",           // optional, default "sdk":
 *           // "sdk": initiateSynchronization() — the SDK sends ONLY
 *           //        {source, scope} for "api",
 *           //        {source, scope, integrationInstanceId, integrationJobId} for "system-internal",
 *           //        {source, integrationInstanceId, integrationJobId} for "integration-*"
 *           //        (scope and syncMode are dropped by the SDK itself).
 *           // "raw": the job is created with the SDK's own api client
 *           //        (apiClient.post('/persister/synchronization/jobs', body), same headers)
 *           //        with body {source, scope, syncMode, integrationInstanceId, integrationJobId}
 *           //        (absent keys omitted); everything after that is the SDK code path.
 *       "client": "steps" | "collected",     // optional, default "steps":
 *           // "steps": the job is driven call by call with the SDK's exported functions
 *           //          initiateSynchronization / uploadGraphObjectData / finalizeSynchronization
 *           //          (or abortSynchronization) / synchronizationStatus.
 *           // "collected": exactly what `j1-integration sync` does: the batches are written as
 *           //          .j1-integration/graph/*.json files (+ summary.json holding partialDatasets,
 *           //          default {"types": []}) in a temp dir and synchronizeCollectedData() runs
 *           //          (initiate, POST .../events, uploads, finalize; on error the SDK aborts the
 *           //          job itself). "initiate" must be "sdk", "finish" must be "finalize".
 *           //          "created" is null in the output for this client.
 *       "partialDatasets": {"types": ["my_type"]}, // optional; passed to finalizeSynchronization
 *       "batches": [                         // each batch = one uploadGraphObjectData() call:
 *         {"entities": [ … ], "relationships": [ … ]}   // entities first, then relationships
 *       ],
 *       "finish": "finalize" | "abort" | "none",   // optional, default "finalize":
 *           // "abort" calls abortSynchronization({reason: abortReason}); "none" leaves the job open
 *       "abortReason": "…",                  // optional, used with "finish": "abort"
 *       "expectError": false                 // optional; true = this job MUST fail somewhere
 *                                            // (initiate/upload/finalize/abort); the failure is
 *                                            // reported in the output line and the run goes on.
 *     }
 *   ]
 * }
 *
 * Output: one JSON line per job on stdout, in scenario order:
 *   {"index":0,
 *    "created":  <job returned by POST /persister/synchronization/jobs>,
 *    "job":      <job returned by finalize (or abort); null when finish = "none">,
 *    "fetched":  <job from GET /persister/synchronization/jobs/{id} (synchronizationStatus) after finishing>}
 * or, for a job with expectError: true that failed as expected,
 *   {"index":0, "created": <job or null>, "error": {"phase": "initiate"|"upload"|"finalize"|"abort",
 *    "code": "<IntegrationError code>", "codes": [<codes along the error's cause chain>],
 *    "message": "…", "status": <HTTP status or null>,
 *    "response": <parsed error response body or null>}}
 * Any unexpected error: message on stderr, exit code 1. Bad usage: exit code 2.
 */

const fs = require('fs');
const os = require('os');
const path = require('path');

// Keep stdout for our JSON lines only: bunyan (the SDK logger) writes to
// process.stdout, so route everything else written there to stderr.
const writeOut = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
function emit(obj) {
  writeOut(JSON.stringify(obj) + '\n');
}

function usage(msg) {
  process.stderr.write(`sync.js: ${msg}\n`);
  process.exit(2);
}

if (!process.env.LOG_LEVEL) process.env.LOG_LEVEL = 'error';

const runtime = require('@jupiterone/integration-sdk-runtime');
const {
  createApiClient,
  createIntegrationLogger,
  initiateSynchronization,
  uploadGraphObjectData,
  finalizeSynchronization,
  abortSynchronization,
  synchronizationStatus,
  synchronizeCollectedData,
} = runtime;

function describeError(err) {
  // IntegrationError from the SDK wraps the axios error in `cause` for
  // unexpected errors; synchronizationApiError() folds the API's
  // {"error":{"code","message"}} into the message instead.
  let e = err;
  let status = null;
  let response = null;
  for (let i = 0; e && i < 5; i++, e = e.cause) {
    if (e.response) {
      status = e.response.status ?? null;
      response = e.response.data ?? null;
      break;
    }
  }
  if (Buffer.isBuffer(response)) response = response.toString('utf8');
  const codes = [];
  for (let c = err, i = 0; c && i < 5; i++, c = c.cause) {
    if (c.code) codes.push(String(c.code));
  }
  return {
    code: err && err.code ? String(err.code) : null,
    codes,
    message: err && err.message ? String(err.message) : String(err),
    status,
    response,
  };
}

function errorChain(err) {
  const parts = [];
  let e = err;
  for (let i = 0; e && i < 5; i++, e = e.cause) {
    const d = describeError(e);
    parts.push(
      `${d.code ? `[${d.code}] ` : ''}${d.message}` +
        (d.status ? ` (HTTP ${d.status}${d.response ? ` ${JSON.stringify(d.response)}` : ''})` : ''),
    );
  }
  return parts.join('\n  caused by: ');
}

class PhaseError extends Error {
  constructor(phase, cause) {
    super(`${phase} failed: ${cause && cause.message}`);
    this.phase = phase;
    this.cause = cause;
  }
}

async function phase(name, fn) {
  try {
    return await fn();
  } catch (err) {
    throw new PhaseError(name, err);
  }
}

function requireJobObject(what, job) {
  if (!job || typeof job !== 'object' || typeof job.id !== 'string' || !job.id) {
    throw new Error(`${what} did not return a job object with a string id (got ${JSON.stringify(job)})`);
  }
  return job;
}

async function runJob({ apiClient, logger, scenario, spec, index }) {
  const initiate = spec.initiate || 'sdk';
  if (!['sdk', 'raw'].includes(initiate)) {
    throw new Error(`jobs[${index}].initiate must be "sdk" or "raw"`);
  }
  if (spec.syncMode !== undefined && initiate !== 'raw') {
    throw new Error(
      `jobs[${index}] has syncMode but initiate is "sdk": the SDK's initiateSynchronization never sends syncMode; set "initiate": "raw"`,
    );
  }
  const finish = spec.finish || 'finalize';
  if (!['finalize', 'abort', 'none'].includes(finish)) {
    throw new Error(`jobs[${index}].finish must be "finalize", "abort" or "none"`);
  }

  const client = spec.client || 'steps';
  if (!['steps', 'collected'].includes(client)) {
    throw new Error(`jobs[${index}].client must be "steps" or "collected"`);
  }
  if (client === 'collected' && (initiate !== 'sdk' || finish !== 'finalize')) {
    throw new Error(`jobs[${index}]: client "collected" needs initiate "sdk" and finish "finalize"`);
  }

  let context;
  let created = null;
  let result;
  try {
    if (client === 'collected') {
      result = await runCollected({ apiClient, logger, spec, index });
    } else {
      result = await runSteps();
    }
  } catch (err) {
    if (!spec.expectError) throw err;
    const inner = err instanceof PhaseError ? err.cause : err;
    const d = describeError(inner);
    emit({
      index,
      created,
      error: { phase: err.phase || null, code: d.code, codes: d.codes, message: d.message, status: d.status, response: d.response },
    });
    return;
  }
  if (spec.expectError) {
    throw new Error(`jobs[${index}] has expectError: true but every call succeeded (job ${result.job && result.job.id})`);
  }
  emit(result);

  async function runSteps() {
    // 1. start the job
    context = await phase('initiate', async () => {
      if (initiate === 'sdk') {
        if (spec.scope !== undefined && /^integration-/.test(spec.source || '')) {
          process.stderr.write(
            `sync.js: note: jobs[${index}] source ${spec.source}: initiateSynchronization drops "scope"\n`,
          );
        }
        const ctx = await initiateSynchronization({
          logger,
          apiClient,
          source: spec.source,
          scope: spec.scope,
          integrationInstanceId: spec.integrationInstanceId,
          integrationJobId: spec.integrationJobId,
        });
        requireJobObject('initiateSynchronization', ctx.job);
        return ctx;
      }
      const body = {};
      for (const k of ['source', 'scope', 'syncMode', 'integrationInstanceId', 'integrationJobId']) {
        if (spec[k] !== undefined) body[k] = spec[k];
      }
      let response;
      try {
        response = await apiClient.post('/persister/synchronization/jobs', body);
      } catch (err) {
        throw runtime.synchronizationApiError(err, 'Error occurred while initiating synchronization job');
      }
      const job = requireJobObject('POST /persister/synchronization/jobs', response.data && response.data.job);
      return { apiClient, job, logger: logger.child({ synchronizationJobId: job.id }) };
    });
    created = context.job;

    // 2. upload batches
    const batches = Array.isArray(spec.batches) ? spec.batches : [];
    for (const batch of batches) {
      await phase('upload', () =>
        uploadGraphObjectData(
          context,
          { entities: batch.entities || [], relationships: batch.relationships || [] },
          scenario.uploadBatchSizeInBytes,
        ),
      );
    }

    // 3. finish
    let job = null;
    if (finish === 'finalize') {
      job = await phase('finalize', () =>
        finalizeSynchronization({ ...context, partialDatasets: spec.partialDatasets }),
      );
    } else if (finish === 'abort') {
      job = await phase('abort', () =>
        abortSynchronization({ ...context, reason: spec.abortReason }),
      );
    }
    if (finish !== 'none') requireJobObject(finish, job);

    // 4. read it back
    const fetched = await phase('status', () => synchronizationStatus(context));
    requireJobObject('synchronizationStatus', fetched);
    return { index, created, job, fetched };
  }
}

// client "collected": lay the batches out the way the SDK's file-system graph
// object store does and let synchronizeCollectedData() do everything.
async function runCollected({ apiClient, logger, spec, index }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'j1ds-sdk-collected-'));
  try {
    const storage = path.join(dir, '.j1-integration');
    fs.mkdirSync(path.join(storage, 'graph'), { recursive: true });
    const batches = Array.isArray(spec.batches) ? spec.batches : [];
    batches.forEach((b, i) => {
      const data = {};
      if (b.entities) data.entities = b.entities;
      if (b.relationships) data.relationships = b.relationships;
      fs.writeFileSync(
        path.join(storage, 'graph', `batch-${String(i).padStart(4, '0')}.json`),
        JSON.stringify(data),
      );
    });
    fs.writeFileSync(
      path.join(storage, 'summary.json'),
      JSON.stringify({ metadata: { partialDatasets: spec.partialDatasets || { types: [] } } }),
    );
    process.env.JUPITERONE_INTEGRATION_STORAGE_DIRECTORY = storage;
    const job = await phase('synchronizeCollectedData', () =>
      synchronizeCollectedData({
        logger,
        apiClient,
        source: spec.source,
        scope: spec.scope,
        integrationInstanceId: spec.integrationInstanceId,
        integrationJobId: spec.integrationJobId,
      }),
    );
    requireJobObject('synchronizeCollectedData', job);
    const fetched = await phase('status', () => synchronizationStatus({ apiClient, job }));
    requireJobObject('synchronizationStatus', fetched);
    return { index, created: null, job, fetched };
  } finally {
    delete process.env.JUPITERONE_INTEGRATION_STORAGE_DIRECTORY;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const baseURL = process.env.J1DS_API_BASE_URL;
  const account = process.env.J1DS_ACCOUNT;
  const apiKey = process.env.J1DS_API_KEY;
  if (!baseURL) usage('J1DS_API_BASE_URL is not set');
  if (!account) usage('J1DS_ACCOUNT is not set');
  if (!apiKey) usage('J1DS_API_KEY is not set');
  const file = process.argv[2];
  if (!file) usage('usage: node sync.js <scenario.json>');

  let scenario;
  try {
    scenario = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    usage(`cannot read scenario ${file}: ${err.message}`);
  }
  if (!scenario || !Array.isArray(scenario.jobs)) usage('scenario must be an object with a "jobs" array');

  const apiClient = createApiClient({
    apiBaseUrl: baseURL,
    account,
    accessToken: apiKey,
    compressUploads: !!scenario.compressUploads,
  });
  const logger = createIntegrationLogger({ name: 'j1ds-sdk-sync-test' });

  for (let i = 0; i < scenario.jobs.length; i++) {
    await runJob({ apiClient, logger, scenario, spec: scenario.jobs[i], index: i });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    const where = err instanceof PhaseError ? `${err.phase}: ` : '';
    process.stderr.write(
      `sync.js: FAILED: ${where}${errorChain(err instanceof PhaseError ? err.cause : err)}\n`,
    );
    process.exit(1);
  },
);
