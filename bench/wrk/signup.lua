-- POST /users with a new email and username on every request: a per-thread prefix (set by
-- setup as the thread's global `prefix`) and a counter, so threads never collide.
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("w%d%d", os.time() % 100000, threads))
end

function request()
  counter = counter + 1
  local name = prefix .. "x" .. counter
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" },
    string.format('{"email":"%s@example.com","username":"%s","password":"bench-password"}', name, name))
end
