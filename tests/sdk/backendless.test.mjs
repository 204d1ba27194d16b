// The Backendless JS SDK (FlowRunner's own client), unchanged, against hookflow's one
// origin: initApp, UserService, every Automations method, the order scenario (a
// logged-in user's app activates the payment callback; roles, ERROR and IGNORE), logout.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import Backendless from 'backendless'

import {
  ORIGIN,
  codeOf,
  deploy,
  eventually,
  giveRoles,
  operator,
  unique,
} from './helpers.mjs'

const PASSWORD = 'correct horse battery'
const email = unique('buyer') + '@example.com'
const flowName = unique('Order fulfilment')

// the order flow of the contract's example: anyone logged in may start it, the payment
// gateway's user (role PaymentGateway) confirms the payment, the courier's IGNOREs
const orderFlow = {
  name: flowName,
  blocks: [
    {
      name: 'Order Received', type: 'start', authenticationType: 'BACKENDLESS',
      next: 'Process Order Details',
    },
    {
      name: 'Process Order Details', type: 'assign',
      assign: { order: 'input.order', buyer: 'user.email' }, next: 'Payment Confirmed',
    },
    {
      name: 'Payment Confirmed', type: 'external_callback', authenticationType: 'USER',
      requiredRoles: ['PaymentGateway'], onFailPolicy: 'ERROR',
      condition: 'data.orderId == vars.order.id', next: 'Shipped',
    },
    {
      name: 'Shipped', type: 'external_callback', authenticationType: 'USER',
      requiredRoles: ['Courier'], onFailPolicy: 'IGNORE', next: 'Complete Order',
    },
    {
      name: 'Complete Order', type: 'assign',
      assign: { status: "'paid'", paidBy: "results['Payment Confirmed'].user.email" },
      next: 'Answer',
    },
    { name: 'Answer', type: 'return', value: '{"status": vars.status, "order": vars.order.id}' },
  ],
}

let deployed
let user

test('initApp reads the application from /api/info', async () => {
  Backendless.initApp(ORIGIN)
  const info = await Backendless.appInfoPromise()
  assert.equal(typeof info.appId, 'string')
  assert.deepEqual(info.loggers, [])
  deployed = await deploy(orderFlow)
})

test('UserService: register, a second registration, a wrong password, login', async () => {
  const registered = await Backendless.UserService.register(
    new Backendless.User({ email, password: PASSWORD, name: 'Ann' })
  )
  assert.equal(registered.email, email)
  assert.equal(registered.name, 'Ann')
  assert.equal(registered.password, undefined)
  const again = new Backendless.User({ email, password: PASSWORD })
  assert.equal(await codeOf(Backendless.UserService.register(again)), 3033)
  assert.equal(await codeOf(Backendless.UserService.login(email, 'wrong password')), 3003)
  assert.equal(await Backendless.UserService.isValidLogin(), false)
  user = await Backendless.UserService.login(email, PASSWORD, true)
  assert.equal(user.objectId, registered.objectId)
  assert.ok(user['user-token'])
  assert.equal(await Backendless.UserService.isValidLogin(), true)
  const reloaded = await Backendless.UserService.getCurrentUser(true)
  assert.equal(reloaded.email, email)
})

test('activateFlowById starts an execution as the logged-in user', async () => {
  const { executionId } = await Backendless.Automations.activateFlowById(deployed.flowId, {
    order: { id: 'o-1', total: 25 },
  })
  const waiting = await eventually(executionId, e => e.status === 'waiting', 'waited')
  assert.equal(waiting.vars.buyer, email) // the starting user is `user`
  const context = await Backendless.Automations.loadFlowExecutionContext(executionId)
  assert.equal(context.status, 'PENDING')
  assert.equal(context.user.objectId, user.objectId)
  assert.deepEqual(context.input, { order: { id: 'o-1', total: 25 } })
})

test('the order scenario: roles, ERROR and IGNORE, by id and by name', async () => {
  const { executionId } = await Backendless.Automations.activateFlow(flowName, {
    order: { id: 'o-2', total: 40 },
  })
  await eventually(executionId, e => e.status === 'waiting', 'waited')
  const [payment, shipped] = deployed.triggers
  // the buyer is no payment gateway: ERROR answers 1000, nothing resumes
  const refused = Backendless.Automations.activateFlowTriggerById(
    deployed.flowId, payment.triggerId, { orderId: 'o-2' }, executionId
  )
  assert.equal(await codeOf(refused), 1000)
  // given the role (a new login: roles travel with the token's user), it confirms
  await giveRoles(user.objectId, ['PaymentGateway'])
  await Backendless.UserService.logout()
  user = await Backendless.UserService.login(email, PASSWORD, true)
  await Backendless.Automations.activateFlowTriggerById(
    deployed.flowId, payment.triggerId, { orderId: 'o-2', amount: 40 }, executionId
  )
  const paid = await eventually(
    executionId, e => e.waitingOn.includes(shipped.triggerId), 'reached Shipped'
  )
  assert.equal(paid.results['Payment Confirmed'].data.amount, 40)
  // no Courier role and policy IGNORE: a 200 that activates nothing
  await Backendless.Automations.activateFlowTrigger(flowName, 'Shipped', { tracking: 'x' })
  await new Promise(resolve => setTimeout(resolve, 500))
  const still = await operator('GET', `/api/automation/executions/${executionId}`)
  assert.equal(still.status, 'waiting')
  // the courier's user (by names this time) lets it finish
  await giveRoles(user.objectId, ['PaymentGateway', 'Courier'])
  await Backendless.UserService.logout()
  user = await Backendless.UserService.login(email, PASSWORD, true)
  await Backendless.Automations.activateFlowTrigger(flowName, 'Shipped', { tracking: 'y' })
  const done = await eventually(executionId, e => e.status === 'completed', 'completed')
  assert.equal(done.vars.status, 'paid')
  assert.equal(done.vars.paidBy, email)
  const context = await Backendless.Automations.loadFlowExecutionContext(executionId)
  assert.equal(context.status, 'COMPLETED')
  assert.equal(context.results.Shipped.data.tracking, 'y')
})

test('an unknown flow name and an unknown trigger name answer their codes', async () => {
  const noFlow = Backendless.Automations.activateFlow(unique('nobody'), {})
  assert.equal(await codeOf(noFlow), 4047)
  const noTrigger = Backendless.Automations.activateFlowTrigger(flowName, 'Nope', {})
  assert.equal(await codeOf(noTrigger), 4048)
})

test('logout ends the token: a USER trigger refuses it, isValidLogin is false', async () => {
  const token = Backendless.UserService.getCurrentUserToken()
  await Backendless.UserService.logout()
  assert.equal(await Backendless.UserService.isValidLogin(), false)
  // the gateways drop the token when auth's revocation event reaches them: milliseconds,
  // more on a loaded machine; until then a gateway may still take it from its cache
  const url = `${ORIGIN}/api/automation/flow/${deployed.flowId}/trigger/${deployed.triggers[0].triggerId}/activate`
  const deadline = Date.now() + 5000
  let response
  do {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'user-token': token, 'content-type': 'application/json' },
      body: '{}'
    })
    if (response.status !== 401) await new Promise((resolve) => setTimeout(resolve, 50))
  } while (response.status !== 401 && Date.now() < deadline)
  assert.equal(response.status, 401)
  assert.equal((await response.json()).code, 1000)
  // and a start of the BACKENDLESS start block without a user is refused the same way
  const anonymous = Backendless.Automations.activateFlowById(deployed.flowId, {})
  assert.equal(await codeOf(anonymous), 1000)
})
