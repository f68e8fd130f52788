// Runs SQL blocks in order in one in-memory DuckDB database and prints
// one JSON line per block: {"name", "columns", "rows"} with the rows of
// the block's last statement as JSON-friendly objects (getRowObjectsJson:
// BIGINT and TIMESTAMP as strings, JSON columns as their text).
//
// Usage: node query.js blocks.json
// blocks.json: {"cwd": "directory the queries' relative paths start from",
//               "blocks": [{"name": "...", "sql": "..."}]}
// A failing block ends the run with exit code 1 and its name and error on
// stderr.
'use strict';

const fs = require('node:fs');
const { DuckDBInstance } = require('@duckdb/node-api');

async function main() {
  const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  process.chdir(input.cwd);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  for (const block of input.blocks) {
    let reader;
    try {
      reader = await connection.runAndReadAll(block.sql);
    } catch (err) {
      process.stderr.write(`block ${block.name}: ${err.message}\n--- sql ---\n${block.sql}\n`);
      process.exit(1);
    }
    process.stdout.write(JSON.stringify({
      name: block.name,
      columns: reader.columnNames(),
      rows: reader.getRowObjectsJson(),
    }) + '\n');
  }
  connection.closeSync();
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
