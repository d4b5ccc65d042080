-- Pre-signed Standard Webhooks requests, one per line of the file given after "--":
-- webhook-id, timestamp, signature, body (tab-separated). Each wrk thread sends its own
-- share of the lines (line n goes to thread n mod threads), each line once, then wraps.
-- A third argument paces each connection: milliseconds to wait before each request.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local requests = {}
local next_index = 1

local pause = 0
function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  pause = tonumber(args[3] or "0")
  if pause > 0 then
    delay = function() return pause end
  end
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then
      local webhook_id, stamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", nil, {
        ["content-type"] = "application/json",
        ["webhook-id"] = webhook_id,
        ["webhook-timestamp"] = stamp,
        ["webhook-signature"] = signature,
      }, body)
    end
    n = n + 1
  end
end

function request()
  local r = requests[next_index]
  next_index = next_index + 1
  if next_index > #requests then next_index = 1 end
  return r
end
