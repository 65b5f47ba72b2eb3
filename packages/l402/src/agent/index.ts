/**
 * `l402/agent`: the buyer's tools for AI agents (fetch and pay, quote, budget, payments, tokens,
 * delegation, wallet, decoders), the guard that keeps them off private networks, and payment approvals.
 * `l402 mcp` serves them over MCP; `l402/agent/langchain` and `l402/agent/ai` adapt them to LangChain.js
 * and the Vercel AI SDK. Node only (it writes large bodies to files and resolves names itself).
 *
 * @example
 * import { Tools } from 'l402/agent';
 * const tools = Tools.buyer({ wallet, store, ledger, policy: { allowedOrigins: ['https://api.example'] } });
 */
export * as Approvals from './approvals.js';
export * as Guard from './guard.js';
export { AgentError } from './guard.js';
export * as Tools from './tools.js';
