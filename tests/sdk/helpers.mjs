// What the SDK tests share: the one origin, the operator's calls (deploy, roles) made
// with the admin key, and waiting for what the engine does after an answer.
import assert from 'node:assert/strict'

export const ORIGIN = process.env.HOOKFLOW_ORIGIN
export const ADMIN_KEY = process.env.HOOKFLOW_ADMIN_KEY
assert.ok(ORIGIN, 'HOOKFLOW_ORIGIN (the one origin) is needed')
assert.ok(ADMIN_KEY, 'HOOKFLOW_ADMIN_KEY is needed')

export const unique = prefix => `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`

export async function operator(method, path, body) {
  const response = await fetch(ORIGIN + path, {
    method,
    headers: { 'content-type': 'application/json', 'x-admin-key': ADMIN_KEY },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`)
  return text ? JSON.parse(text) : null
}

export const deploy = definition => operator('POST', '/api/automation/flows', definition)

export const giveRoles = (objectId, roles) =>
  operator('PUT', `/api/users/${objectId}/roles`, { roles })

export const execution = executionId =>
  operator('GET', `/api/automation/executions/${executionId}`)

// the engine decides after the answer: wait until `check` holds for the execution
export async function eventually(executionId, check, what, seconds = 20) {
  const deadline = Date.now() + seconds * 1000
  let last = null
  while (Date.now() < deadline) {
    try {
      last = await execution(executionId)
      if (check(last)) return last
    } catch {
      // not created yet
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  assert.fail(`execution ${executionId} never ${what}: ${JSON.stringify(last)}`)
}

// a rejected SDK call's Backendless error code
export async function codeOf(promise) {
  try {
    await promise
  } catch (error) {
    return error.code
  }
  assert.fail('the call succeeded')
}
