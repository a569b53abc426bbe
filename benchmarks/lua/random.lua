-- /prediction with random dates (from ${first}, ${days} days) and products.
math.randomseed(42)
local items = {${items}}
local first = ${first}
local days = ${days}
request = function()
  local day = os.date("!%Y-%m-%d", first + math.random(0, days - 1) * 86400)
  return wrk.format("GET", "/prediction?date=" .. day .. "&item_nbr=" .. items[math.random(1, #items)])
end
