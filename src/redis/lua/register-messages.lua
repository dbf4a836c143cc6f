-- Registers messages as they are enqueued, all or none, in one atomic step.
-- KEYS, 4 per message: its conversation's owner and pending set, its digest, its tenant's pending set; then the set
-- of every tenant's pending set (for the queue's oldest unanswered message).
-- ARGV: pending TTL (ms), owner TTL (ms; 0: for ever), digest TTL (ms), most queued per tenant (0: no bound), then 3 per message:
-- its scoped messageId, its userId and the digest of its content.
-- Returns {'refused', i, why, …} (why: 'conflict' when the messageId was accepted with other content, 'owner' when
-- the conversation belongs to another user), {'queued', queued, adding} past the tenant's bound, or {'ok', rank, …}:
-- each message's rank among its tenant's pending messages (1: the oldest), 0 for one that is not pending any more
-- (accepted before and answered since).
local n = (#KEYS - 1) / 4
local registry = KEYS[#KEYS]
local maxQueued = tonumber(ARGV[4])
local refused, claimed, seen, fresh = {}, {}, {}, {}
for i = 1, n do
  local owner, digestKey = KEYS[4 * i - 3], KEYS[4 * i - 1]
  local user, digest = ARGV[3 * i + 3], ARGV[3 * i + 4]
  local known = seen[digestKey] or redis.call('GET', digestKey)
  if known and known ~= digest then
    table.insert(refused, i)
    table.insert(refused, 'conflict')
  elseif not known then
    local o = claimed[owner] or redis.call('GET', owner)
    if o and o ~= user then
      table.insert(refused, i)
      table.insert(refused, 'owner')
    else
      claimed[owner] = user
      seen[digestKey] = digest
      fresh[i] = true
    end
  end
end
if #refused > 0 then
  table.insert(refused, 1, 'refused')
  return refused
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Members older than the pending TTL belong to enqueues that failed half-way; they leave before counting.
local adding = {}
for i = 1, n do
  if fresh[i] then adding[KEYS[4 * i]] = (adding[KEYS[4 * i]] or 0) + 1 end
end
for tenantPending, k in pairs(adding) do
  redis.call('ZREMRANGEBYSCORE', tenantPending, '-inf', now - tonumber(ARGV[1]) * 1000)
  local queued = redis.call('ZCARD', tenantPending)
  if maxQueued > 0 and queued + k > maxQueued then return {'queued', queued, k} end
end

local ranks = {'ok'}
for i = 1, n do
  local owner, pending, digestKey, tenantPending = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local id = ARGV[3 * i + 2]
  if fresh[i] then
    if ARGV[2] == '0' then
      redis.call('SET', owner, ARGV[3 * i + 3])
    else
      redis.call('SET', owner, ARGV[3 * i + 3], 'PX', ARGV[2])
    end
    redis.call('SET', digestKey, ARGV[3 * i + 4], 'PX', ARGV[3])
    -- Its place: the server's time in µs, or one past its conversation's last place, so places only grow.
    if not redis.call('ZSCORE', pending, id) then
      local place = now
      local last = redis.call('ZRANGE', pending, -1, -1, 'WITHSCORES')
      if last[2] and tonumber(last[2]) >= place then place = tonumber(last[2]) + 1 end
      redis.call('ZADD', pending, place, id)
    end
    redis.call('PEXPIRE', pending, ARGV[1])
    redis.call('ZADD', tenantPending, 'NX', now, id)
    redis.call('SADD', registry, tenantPending)
  end
  local rank = redis.call('ZRANK', tenantPending, id)
  table.insert(ranks, rank and (rank + 1) or 0)
end
return ranks
