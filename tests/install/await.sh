# Sourced by the install tests: waiting for a process's own word that it is ready, without polling.

# await_line FIFO LOG TEXT: reads FIFO (the process's stderr) line by line into LOG until a line
# contains TEXT, then copies the rest into LOG in the background (a job the caller may wait for).
# Fails when the process closes its stderr (it exited) before saying TEXT.
await_line() {
	local fifo=$1 log=$2 text=$3 line
	exec 3<"$fifo"
	while IFS= read -r line <&3; do
		printf '%s\n' "$line" >>"$log"
		if [[ $line == *"$text"* ]]; then
			cat <&3 >>"$log" &
			return 0
		fi
	done
	return 1
}
