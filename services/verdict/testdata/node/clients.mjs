// Sends exposures and purchases to verdict's HTTP ingest through the
// official client libraries, unchanged, as a product would:
//
//   - GrowthBook's JS SDK assigns each unit to a variant of EXPERIMENT and
//     reports the exposure from its trackingCallback as Segment's
//     "Experiment Viewed" track, through Segment's Node library;
//   - Segment's Node library sends "Order Completed" purchases, and sends
//     some exposures and purchases twice with the same messageId;
//   - RudderStack's Node SDK sends "Product Added" events;
//   - a Segment client with a wrong write key sends events that must be
//     refused (401) and stored nowhere.
//
// Environment: VERDICT_URL (http://host:port), WRITE_KEY, EXPERIMENT,
// UNITS. Prints one JSON line: what was sent, by messageId, for the test to
// compare with ClickHouse.
import { Analytics } from '@segment/analytics-node'
import RudderAnalytics from '@rudderstack/rudder-sdk-node'
import { GrowthBook } from '@growthbook/growthbook'

const host = process.env.VERDICT_URL
const writeKey = process.env.WRITE_KEY
const experiment = process.env.EXPERIMENT
const units = Number(process.env.UNITS || 1000)

const errors = []
const segment = new Analytics({ writeKey, host, flushAt: 100, flushInterval: 200, maxRetries: 5 })
segment.on('error', (e) => errors.push(String(e.reason || e.message || e)))
const rudder = new RudderAnalytics(writeKey, { dataPlaneUrl: host, flushAt: 50, flushInterval: 200, maxInternalQueueSize: 100000 })
const intruder = new Analytics({ writeKey: 'not-a-key', host, flushAt: 20, maxRetries: 0 })
let refused = 0
intruder.on('error', () => { refused++ })

const sent = { exposures: [], purchases: [], products: [], duplicates: 0, variants: {} }
for (let i = 0; i < units; i++) {
  const unit = `gb-user-${i}`
  const gb = new GrowthBook({
    attributes: { id: unit },
    trackingCallback: (exp, result) => {
      const ev = { userId: unit, event: 'Experiment Viewed', messageId: `x-${unit}`, properties: { experimentId: exp.key, variationId: result.key }, context: { os: { name: i % 2 ? 'iOS' : 'Android' } } }
      segment.track(ev)
      sent.exposures.push(ev.messageId)
      sent.variants[result.key] = (sent.variants[result.key] || 0) + 1
      if (i % 10 === 0) { segment.track(ev); sent.duplicates++ } // a client retrying on its own
    },
  })
  const res = gb.run({ key: experiment, variations: [0, 1], meta: [{ key: 'control' }, { key: 'one-page' }] })
  // One-page converts more: 30% against 15%.
  if ((i * 7919) % 100 < (res.key === 'one-page' ? 30 : 15)) {
    const ev = { userId: unit, event: 'Order Completed', messageId: `p-${unit}`, properties: { revenue: 20 + (i % 30), currency: 'EUR' } }
    segment.track(ev)
    sent.purchases.push(ev.messageId)
    if (i % 7 === 0) { segment.track(ev); sent.duplicates++ }
  }
  if (i % 4 === 0) {
    const id = `r-${unit}`
    rudder.track({ userId: unit, event: 'Product Added', messageId: id, properties: { value: 2 } })
    sent.products.push(id)
  }
  if (i % 50 === 0) {
    intruder.track({ userId: `intruder-${i}`, event: 'Order Completed', messageId: `bad-${i}`, properties: { revenue: 1 } })
  }
  gb.destroy()
}
await segment.closeAndFlush({ timeout: 60000 })
await intruder.closeAndFlush({ timeout: 30000 })
await new Promise((resolve) => rudder.flush(resolve))
console.log(JSON.stringify({ ...sent, refused, errors }))
