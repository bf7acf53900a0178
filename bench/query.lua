-- wrk script for bench/query.py: consent-gated FHIR searches, one patient per request.
--
--   wrk -t1 -c64 -d10s --latency -s bench/query.lua http://127.0.0.1:PORT -- TOKENS PATIENTS
--
-- TOKENS: a file of access tokens, one a line (each request takes the next one, as several
-- clients of one hospital would); PATIENTS: how many patients the ledger holds, named
-- pt-00000000 ... (bench/query.py's _subject); each request asks for a random one.
-- wrk counts responses that are neither 2xx nor 3xx ("Non-2xx or 3xx responses").

local tokens = {}
local patients = 1
local n = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      tokens[#tokens + 1] = "Bearer " .. line
    end
  end
  assert(#tokens > 0, "no tokens in " .. tostring(args[1]))
  patients = tonumber(args[2])
  math.randomseed(os.time())
end

function request()
  n = n + 1
  local path = string.format(
    "/fhir/Observation?subject=Patient%%2Fpt-%08d&_count=20", math.random(0, patients - 1))
  return wrk.format("GET", path, {
    ["Authorization"] = tokens[n % #tokens + 1],
    ["X-Purpose-Of-Use"] = "TREAT",
    ["Accept"] = "application/fhir+json",
  })
end
