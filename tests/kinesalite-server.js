// Runs kinesalite (tests/node_modules/kinesalite/cli.js, same arguments) so that a client aborting a request does
// not end it: kinesalite 3.3.3 rethrows request errors (index.js: req.on('error', function(err) { throw err })), so
// one client killed or timing out mid-request ("Error: aborted", ECONNRESET) took the shared server down for every
// test on the machine.
process.on('uncaughtException', function(err) {
  if (err && err.code === 'ECONNRESET') {
    console.error('kinesalite: a client aborted a request (' + err.message + '); going on')
    return
  }
  console.error(err)
  process.exit(1)
})
require('./node_modules/kinesalite/cli.js')
