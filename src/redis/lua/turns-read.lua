-- KEYS: a conversation's ordered set and hash; ARGV: how many. The newest ARGV[1] turns, oldest first.
local ids = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
