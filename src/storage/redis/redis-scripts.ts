/**
 * The Lua scripts behind the Redis ephemeral store. Each store operation is
 * one script, so it is one round trip and atomic (Redis runs a script without
 * interleaving other commands): no read-then-write races.
 *
 * Layout of oidc-provider artifacts, with `{base}` = `{prefix}oidc:{pool}:`:
 * - `{base}{model}:{id}`      hash: `payload` (JSON), `consumed` (epoch seconds),
 *                             and the index values `uid`, `userCode`, `grantId`,
 *                             `accountId` so destroy/revoke can find the indexes to clean
 * - `{base}uid:{uid}`         string: id (Session lookup by uid)
 * - `{base}userCode:{code}`   string: id (DeviceCode lookup by user code)
 * - `{base}grant:{grantId}`   set of artifact keys; lives as long as its longest member
 * - `{base}account:{id}`      set of artifact keys (a user's sessions, for signing
 *                             them out); lives as long as its longest member
 *
 * Scripts derive index keys from `{base}`, so they assume one Redis node
 * (standalone or Sentinel). Redis Cluster would need the pool in a hash tag.
 */

/** KEYS[1] counter; ARGV[1] window in ms. The window starts with the first increment. */
export const INCREMENT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
`;

/** Deletes an index entry only while it still points at this artifact. */
const DROP_INDEXES = `
local function dropIndex(indexKey, id)
  if redis.call('GET', indexKey) == id then redis.call('DEL', indexKey) end
end
local function dropIndexes(base, key, id)
  local fields = redis.call('HMGET', key, 'uid', 'userCode', 'grantId', 'accountId')
  if fields[1] then dropIndex(base .. 'uid:' .. fields[1], id) end
  if fields[2] then dropIndex(base .. 'userCode:' .. fields[2], id) end
  if fields[3] then redis.call('SREM', base .. 'grant:' .. fields[3], key) end
  if fields[4] then redis.call('SREM', base .. 'account:' .. fields[4], key) end
end
`;

/**
 * KEYS[1] artifact; ARGV: base, id, payload JSON, ttl ms ('' = none), uid, userCode,
 * grantId ('' = none), consumed epoch seconds from the payload ('' = none), accountId ('' = none).
 * Replaces payload, expiry and indexes; a consumed mark survives (single use is monotonic).
 */
export const OIDC_UPSERT = `${DROP_INDEXES}
local key = KEYS[1]
local base, id, payload, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local uid, userCode, grantId, consumed, accountId = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
dropIndexes(base, key, id)
redis.call('HDEL', key, 'uid', 'userCode', 'grantId', 'accountId')
redis.call('HSET', key, 'payload', payload)
if consumed ~= '' then redis.call('HSETNX', key, 'consumed', consumed) end
if ttl then redis.call('PEXPIRE', key, ttl) else redis.call('PERSIST', key) end
local function index(field, value)
  if value == '' then return end
  redis.call('HSET', key, field, value)
  if ttl then redis.call('SET', base .. field .. ':' .. value, id, 'PX', ttl)
  else redis.call('SET', base .. field .. ':' .. value, id) end
end
-- A set of artifact keys that lives as long as its longest member.
local function member(field, value, set)
  if value == '' then return end
  redis.call('HSET', key, field, value)
  local existed = redis.call('EXISTS', set)
  redis.call('SADD', set, key)
  if not ttl then
    redis.call('PERSIST', set)
  else
    local remaining = redis.call('PTTL', set)
    -- -1: no expiry because a member never expires; keep it that way.
    if existed == 0 or (remaining >= 0 and remaining < ttl) then redis.call('PEXPIRE', set, ttl) end
  end
end
index('uid', uid)
index('userCode', userCode)
member('grantId', grantId, base .. 'grant:' .. grantId)
member('accountId', accountId, base .. 'account:' .. accountId)
return 1
`;

/** KEYS[1] artifact; ARGV[1] now in epoch seconds. 1 when this call consumed it. */
export const OIDC_CONSUME = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1])
`;

/** KEYS[1] artifact; ARGV: base, id. */
export const OIDC_DESTROY = `${DROP_INDEXES}
dropIndexes(ARGV[1], KEYS[1], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
`;

/** KEYS[1] index key; ARGV[1] `{base}{model}:`. The artifact's hash as a flat array, or nil. */
export const OIDC_FIND_BY_INDEX = `
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. id)
`;

/**
 * KEYS[1] account set; ARGV[1] `{base}{model}:`. That model's live members as
 * a flat array of [id, payload, consumed ('' = none)] triples; forgets
 * members that expired.
 */
export const OIDC_LIST_BY_ACCOUNT = `
local modelPrefix = ARGV[1]
local found = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = redis.call('HMGET', key, 'payload', 'consumed')
  if not fields[1] then
    redis.call('SREM', KEYS[1], key)
  elseif string.sub(key, 1, #modelPrefix) == modelPrefix then
    table.insert(found, string.sub(key, #modelPrefix + 1))
    table.insert(found, fields[1])
    table.insert(found, fields[2] or '')
  end
end
return found
`;

/**
 * KEYS[1] a Session's hash; ARGV[1] base. Indexes by account a session
 * stored before account sets existed (its account only in the payload JSON),
 * as an upsert would now; leaves anything already indexed alone. 1 when it
 * indexed the session.
 */
export const OIDC_INDEX_ACCOUNT = `
local key, base = KEYS[1], ARGV[1]
if redis.call('HEXISTS', key, 'accountId') == 1 then return 0 end
local payload = redis.call('HGET', key, 'payload')
if not payload then return 0 end
local ok, decoded = pcall(cjson.decode, payload)
if not ok or type(decoded) ~= 'table' or type(decoded.accountId) ~= 'string' or decoded.accountId == '' then
  return 0
end
redis.call('HSET', key, 'accountId', decoded.accountId)
local set = base .. 'account:' .. decoded.accountId
local ttl = redis.call('PTTL', key)
local existed = redis.call('EXISTS', set)
redis.call('SADD', set, key)
if ttl < 0 then
  redis.call('PERSIST', set)
else
  local remaining = redis.call('PTTL', set)
  if existed == 0 or (remaining >= 0 and remaining < ttl) then redis.call('PEXPIRE', set, ttl) end
end
return 1
`;

/** KEYS[1] grant set; ARGV: base, `{base}{model}:`. Deletes that model's members only. */
export const OIDC_REVOKE_BY_GRANT = `${DROP_INDEXES}
local base, modelPrefix = ARGV[1], ARGV[2]
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if string.sub(key, 1, #modelPrefix) == modelPrefix then
    dropIndexes(base, key, string.sub(key, #modelPrefix + 1))
    redis.call('DEL', key)
    redis.call('SREM', KEYS[1], key)
  end
end
return 1
`;
