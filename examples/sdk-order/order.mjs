// The order scenario with FlowRunner's own client, the Backendless JS SDK, against
// hookflow's one origin: a buyer's app starts an order, the payment gateway's app
// confirms the payment with its user's token, the buyer's app reads how it ended.
//
//   node examples/sdk-order/order.mjs [origin]   (default http://127.0.0.1:8080)
//
// Giving the payment gateway's user its role is the operator's part: this program does
// it with the admin key (HOOKFLOW_ADMIN_KEY), as `make user ... ROLES=PaymentGateway` would.
import Backendless from 'backendless'

const origin = process.argv[2] || process.env.GATEWAY || 'http://127.0.0.1:8080'
const adminKey = process.env.HOOKFLOW_ADMIN_KEY
if (!adminKey) throw new Error('set HOOKFLOW_ADMIN_KEY (make up prints it)')

const run = Date.now().toString(36)
const password = 'a long example password'
const buyer = `buyer-${run}@example.com`
const gateway = `payments-${run}@example.com`
const orderId = `o-${run}`

Backendless.initApp(origin)
const Users = Backendless.UserService
const Automations = Backendless.Automations

// two users register; the operator makes the second one the payment gateway
await Users.register(new Backendless.User({ email: buyer, password, name: 'Ann' }))
const payments = await Users.register(new Backendless.User({ email: gateway, password }))
const granted = await fetch(`${origin}/api/users/${payments.objectId}/roles`, {
  method: 'PUT',
  headers: { 'content-type': 'application/json', 'x-admin-key': adminKey },
  body: JSON.stringify({ roles: ['PaymentGateway'] }),
})
if (!granted.ok) throw new Error(`roles: ${granted.status} ${await granted.text()}`)

// the buyer's app: log in, place the order (the live version of the flow, by name)
await Users.login(buyer, password)
const { executionId } = await Automations.activateFlow('Shop order', {
  order: { id: orderId, total: 25 },
})
console.log(`order ${orderId} placed: execution ${executionId}`)

// the buyer cannot confirm its own payment: the trigger wants role PaymentGateway
try {
  await Automations.activateFlowTrigger('Shop order', 'Payment Confirmed', { orderId, amount: 25 })
} catch (error) {
  console.log(`the buyer confirming the payment: refused, code ${error.code}`)
}
await Users.logout()

// the payment gateway's app: its user's token passes the trigger's rules
await Users.login(gateway, password)
await Automations.activateFlowTrigger('Shop order', 'Payment Confirmed', { orderId, amount: 25 })
await Users.logout()

// the buyer's app again: the order's context, once the run is over
await Users.login(buyer, password)
let context
for (let attempt = 0; attempt < 200; attempt++) {
  context = await Automations.loadFlowExecutionContext(executionId)
  if (context.status === 'COMPLETED') break
  await new Promise(resolve => setTimeout(resolve, 50))
}
const { status, amount, paidBy } = context.vars
console.log(`order ${orderId}: ${context.status}, ${status} ${amount} by ${paidBy}`)
await Users.logout()
