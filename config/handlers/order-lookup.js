// @ts-check
/**
 * Sample custom intent handler: looks an order up in the (fictional) shop's order system. A real deployment calls its
 * own service here; this one knows three orders so the demo and the tests can show both answers. Handlers are
 * JavaScript modules: workers run compiled code, without a TypeScript loader.
 *
 * @typedef {import('../../src/intent/intent-types.js').HandlerContext} HandlerContext
 * @typedef {import('../../src/intent/intent-types.js').HandlerResult} HandlerResult
 */

/** @type {Record<string, { en: string; zh: string }>} */
const ORDERS = {
  'MP-10001': {
    en: 'has shipped: it left on 24 November with SF Express, tracking number SF1234567890',
    zh: '已于11月24日由顺丰发出，运单号 SF1234567890',
  },
  'MP-10002': {
    en: 'is being packed in our warehouse; it ships within 24 hours',
    zh: '正在仓库打包，将在24小时内发货',
  },
  'MP-10003': {
    en: 'was delivered on 26 November and signed for at the front desk',
    zh: '已于11月26日送达，由前台签收',
  },
};

/**
 * Answers with the order's state when the message names a known order number, else asks for it.
 *
 * @param {HandlerContext} context
 * @returns {HandlerResult}
 */
export function handle(context) {
  const raw = context.intent.slots.orderId;
  const zh = context.language === 'zh';
  if (!raw)
    return {
      reply: zh
        ? '请提供您的订单号（例如 MP-10001），我来帮您查询。'
        : 'Please tell me your order number (for example MP-10001) and I will look it up.',
    };
  const id = raw.toUpperCase().replace(/^MP-?/, 'MP-');
  const order = ORDERS[id];
  if (!order)
    return {
      reply: zh ? `没有找到订单 ${id}，请核对订单号。` : `I couldn't find order ${id}; please check the number.`,
    };
  return { reply: zh ? `您的订单 ${id} ${order.zh}。` : `Your order ${id} ${order.en}.` };
}
