'use strict';
// Trace's Node runtime: the AWS Lambda Runtime API loop for a `handler(event, context)` bundle.
//
// Runs inside the Lite sandbox (Node's standard library only). It loads `_HANDLER` (`file.export`,
// `file` relative to LAMBDA_TASK_ROOT, without extension) as CommonJS through require(), or as ESM
// through import() for a `.mjs` file or a package.json with "type": "module"; then loops on
// GET /2018-06-01/runtime/invocation/next over the Unix socket TRACE_RUNTIME_SOCKET and posts each
// result (JSON) or error ({errorType, errorMessage, stackTrace}), as Lambda's Node runtime does.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const API = '/2018-06-01/runtime';
const SANDBOX_UID = 65534;
const SOCKET = process.env.TRACE_RUNTIME_SOCKET || '/run/trace/runtime.sock';
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT || '/var/task';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: SOCKET, method, path: API + url, agent, headers: headers || {} },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function post(url, doc, errorType) {
  const body = Buffer.isBuffer(doc) ? doc : Buffer.from(JSON.stringify(doc));
  const headers = { 'Content-Type': 'application/json', 'Content-Length': body.length };
  if (errorType) headers['Lambda-Runtime-Function-Error-Type'] = errorType;
  try {
    return (await request('POST', url, body, headers)).status;
  } catch (err) {
    return 0; // the server refused a body over its limit and closed: it has recorded the failure
  }
}

function toError(err, errorType) {
  const isError = err instanceof Error;
  return {
    errorType: errorType || (isError ? err.name : 'Error'),
    errorMessage: isError ? err.message : String(err),
    stackTrace: isError && err.stack ? err.stack.split('\n').slice(1).map((line) => line.trim()) : [],
  };
}

function dropPrivileges() {
  // Started as the namespace's root (only when Trace runs as root): become SANDBOX_UID before any user
  // code runs; setuid from 0 clears every capability.
  if (process.getuid && process.getuid() === 0) {
    process.setgroups([]);
    process.setgid(SANDBOX_UID);
    process.setuid(SANDBOX_UID);
  }
}

function isEsm(file) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(TASK_ROOT, 'package.json'), 'utf8'));
    return pkg.type === 'module';
  } catch (err) {
    return false;
  }
}

async function loadHandler(spec) {
  const dot = spec.lastIndexOf('.');
  if (dot <= 0) throw Object.assign(new Error(`_HANDLER ${JSON.stringify(spec)} is not file.export`), { init: 'Runtime.HandlerNotFound' });
  const base = path.join(TASK_ROOT, spec.slice(0, dot));
  const name = spec.slice(dot + 1);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((candidate) => fs.existsSync(candidate));
  if (!file) throw Object.assign(new Error(`Cannot find module '${spec.slice(0, dot)}'`), { init: 'Runtime.ImportModuleError' });
  let mod;
  try {
    mod = isEsm(file) ? await import(pathToFileURL(file).href) : require(file);
  } catch (err) {
    err.init = 'Runtime.ImportModuleError';
    throw err;
  }
  const handler = mod[name] !== undefined ? mod[name] : (mod.default && mod.default[name]);
  if (typeof handler !== 'function') {
    throw Object.assign(new Error(`${spec} is undefined or not exported`), { init: 'Runtime.HandlerNotFound' });
  }
  return handler;
}

function makeContext(requestId, deadlineMs, arn) {
  const env = process.env;
  return {
    awsRequestId: requestId,
    invokedFunctionArn: arn,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME || '',
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION || '$LATEST',
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || '128',
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME || '',
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME || '',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
  };
}

function callHandler(handler, event, context) {
  // async handlers return a promise; callback-style handlers (three parameters) call back
  return new Promise((resolve, reject) => {
    const callback = (err, value) => (err ? reject(err) : resolve(value));
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
      else if (handler.length < 3) resolve(returned);
    } catch (err) {
      reject(err);
    }
  });
}

async function main() {
  dropPrivileges();
  process.chdir(TASK_ROOT);
  let handler;
  try {
    handler = await loadHandler(process.env._HANDLER || '');
  } catch (err) {
    const type = err.init || 'Runtime.ImportModuleError';
    await post('/init/error', toError(err, type), type);
    process.exit(1);
  }
  for (;;) {
    const next = await request('GET', '/invocation/next');
    if (next.status !== 200) process.exit(0); // the server is closing
    const requestId = next.headers['lambda-runtime-aws-request-id'];
    const context = makeContext(requestId, Number(next.headers['lambda-runtime-deadline-ms'] || 0),
      next.headers['lambda-runtime-invoked-function-arn'] || '');
    let result;
    try {
      result = await callHandler(handler, JSON.parse(next.body.toString('utf8')), context);
    } catch (err) {
      const error = toError(err);
      await post(`/invocation/${requestId}/error`, error, error.errorType);
      continue;
    }
    let payload;
    try {
      payload = Buffer.from(JSON.stringify(result === undefined ? null : result));
    } catch (err) {
      await post(`/invocation/${requestId}/error`, toError(err, 'Runtime.MarshalError'), 'Runtime.MarshalError');
      continue;
    }
    await post(`/invocation/${requestId}/response`, payload);
  }
}

main().catch((err) => {
  process.stderr.write(`bootstrap: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
