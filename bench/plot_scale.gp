# bench/plot_scale.gp: draws bench/results-scale.png (the scale benchmark) from the data file bench/scale.py
# writes: one block per path ("name" line, then N median min max rows).
# gnuplot -e "datafile='F'; outfile='results-scale.png'; maintitle='...'" bench/plot_scale.gp
set terminal pngcairo size 1000,650 font "sans,10"
set output outfile
set title maintitle font "sans,12"
set logscale x
set logscale y
set xrange [5:20000]
set xlabel "idle connections in the same epoll set (N)"
set ylabel "64-byte round trips per second on the active connection"
set grid xtics ytics mxtics mytics
set key top right
set bars 2
plot datafile index 0 using 1:2:3:4 with yerrorlines lw 2 pt 7 title columnheader(1), \
     datafile index 1 using 1:2:3:4 with yerrorlines lw 2 pt 5 title columnheader(1)
