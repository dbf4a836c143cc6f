-- For each key i: append event ARGV[2i-1], renew the TTL to ARGV[2i] and notify readers, in one atomic step, so
-- that a reader woken by the notification always finds the entry. A key may come more than once, in order.
for i = 1, #KEYS do
  local id = redis.call('XADD', KEYS[i], '*', 'e', ARGV[2 * i - 1])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
  redis.call('PUBLISH', KEYS[i], id)
end
return #KEYS
