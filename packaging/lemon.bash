# bash completion for lemon(1)
_lemon()
{
	local cur prev cmds
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	cmds="doctor system-info install-backend backends uninstall-backend serve pull rm list run ps status stop worker help"
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$cmds --version --help" -- "$cur"))
		return
	fi
	case ${COMP_WORDS[1]} in
	help)
		COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		return
		;;
	esac
	case $prev in
	--backend)
		COMPREPLY=($(compgen -W "auto cuda rocm vulkan cpu" -- "$cur"))
		return
		;;
	--file | --api-key-file | --sysroot | --compat-dir | --data-dir)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		# the command's own options, read from its --help
		COMPREPLY=($(compgen -W "$(lemon "${COMP_WORDS[1]}" --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u)" -- "$cur"))
		return
	fi
	case ${COMP_WORDS[1]} in
	rm | run)
		COMPREPLY=($(compgen -W "$(lemon list 2>/dev/null | awk 'NR > 1 { print $1 }')" -- "$cur"))
		;;
	esac
}
complete -F _lemon lemon
