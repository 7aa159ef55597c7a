set terminal pngcairo size 1600,700 font ',10'
set output '/work/main/bench/results/bench-20261202-021014-3e229d06f428-throughput.png'
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
"1->1 16B" 12851843 10329508 427000 526379 308577 2372385
"1->1 64B" 12790331 9071362 430373 516718 312491 1908411
"1->1 1024B" 1462590 2844927 372033 448174 330901 935626
"1->1 4096B" 1067870 2263784 348732 398132 258574 616340
"2->1 64B" 10227697 ? 431555 529761 273202 2206131
"1->2 competing 64B" 11233626 ? 438714 ? 312319 1928567
"1->2 groups 64B" 9487225 1008583 205059 169666 131022 2054146
EOD
plot for [i=2:7] $data using i:xtic(1) title columnhead(i)
