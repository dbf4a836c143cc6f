-- Takes from fixed one-minute windows, all or none. KEYS: one counter per limit; ARGV: the window (ms), then for each
-- counter the amount to take and its limit. Returns 0 when taken, else the 1-based index of the first limit that the
-- take would pass, followed by the ms left in its window.
local window = ARGV[1]
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + tonumber(ARGV[2 * i]) > tonumber(ARGV[2 * i + 1]) then
    local left = redis.call('PTTL', KEYS[i])
    return {i, left > 0 and left or tonumber(window)}
  end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[2 * i])
  redis.call('PEXPIRE', KEYS[i], window, 'NX')
end
return {0, 0}
