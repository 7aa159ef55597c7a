set terminal pngcairo size 1600,700 font ',10'
set output '/work/main/bench/results/bench-20261123-171800-b6e19dea2392-dirty-throughput.png'
set title 'Throughput, median of 3 (msgs/s, log scale; missing bar = n/a)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set termoption noenhanced
set logscale y
set yrange [1e4:*]
set grid ytics
set ylabel 'distinct messages / s'
set xtics rotate by -25
set key outside right
set datafile missing '?'
$data << EOD
cell "ackring at-least-once" "bare SPSC ring (floor)" "unix socket SEQPACKET" "pipe (framed stream)" "POSIX mq" "boost::interprocess mq"
"1->1 16B" 4108278 9836807 409749 501391 332617 2249704
"1->1 64B" 4436707 9654949 421458 580110 331218 1971239
"1->1 1024B" 1602961 9033722 403431 437310 346366 1053262
"1->1 4096B" 1016714 3705936 371344 407526 308994 455449
"2->1 64B" 3607803 ? 340847 496796 316123 2274596
"1->2 competing 64B" 4397500 ? 333805 ? 330944 1950873
"1->2 groups 64B" 3894598 1012337 147225 169791 127363 2096834
EOD
plot for [i=2:7] $data using i:xtic(1) title columnhead(i)
